"""A batch job's failure to make its environment, told to the client through the shared store.

A job (a SLURM or PBS job, a Kubernetes pod) that cannot make the environment exits
before any Dask worker starts, so the scheduler never hears of it and the batch system
may still call it running. Compute nodes may reach nothing but the shared store and the
scheduler, so the worker command writes a small JSON report (``FailureReport``) into
``<store>/jobs/<key>/`` (``key``: one per worker command, so one per cluster) that the
client watches; the job's stderr says the same. Secrets never go into it: URL userinfo
and the values of the job's credential variables are masked before it is written.

Standard library only: this module runs on the machines of the jobs.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Final, Literal, TypedDict

REPORT_FORMAT: Final = 1
JOBS_DIR = "jobs"
# where batch systems put the job's id (SLURM, PBS/Torque, SGE, LSF, Flux, HTCondor)
JOB_VARIABLES = ("SLURM_JOB_ID", "PBS_JOBID", "JOB_ID", "LSB_JOBID", "FLUX_JOB_ID",
                 "CONDOR_JOB_ID")
_SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|_KEY$|^UV_INDEX_.*_USERNAME$")
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")
MASK = "***"


class FailureReport(TypedDict):
    """One job that could not start its worker (JSON under ``<store>/jobs/<key>/``)."""

    format: Literal[1]  # REPORT_FORMAT
    job: str  # the batch system's job id ("" outside one)
    worker: str  # the Dask worker's name (``--name``), "" if not given
    host: str
    pid: int
    kind: str  # "store", "integrity", "disk", "materialize", "arguments", ...
    message: str
    log: str  # the tail of what explains it (uv's output, ...), masked
    time: float


def reports_dir(store: str, key: str) -> str:
    return os.path.join(store, JOBS_DIR, key)


def job_id(environ: Mapping[str, str]) -> str:
    """The batch system's id of the job running this process, if any."""
    return next((environ[v] for v in JOB_VARIABLES if environ.get(v)), "")


def worker_name(args: Sequence[str]) -> str:
    """The ``--name`` a Dask worker command line gives its worker."""
    for index, arg in enumerate(args):
        if arg == "--name" and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith("--name="):
            return arg.split("=", 1)[1]
    return ""


def mask(text: str, environ: Mapping[str, str]) -> str:
    """``text`` without URL userinfo and without the values of credential-like variables."""
    text = _USERINFO.sub(lambda m: m.group("scheme") + MASK + "@", text)
    secrets = sorted((v for k, v in environ.items() if _SECRET_NAME.search(k.upper())
                      and len(v) >= 4), key=len, reverse=True)
    for value in secrets:
        text = text.replace(value, MASK)
    return text


def write_failure(store: str, key: str, *, kind: str, message: str, log: str,
                  args: Sequence[str], environ: Mapping[str, str]) -> str:
    """Write this job's report; its path, or "" if the store cannot take it (not mounted,
    read-only, full: the job's stderr is then the only witness)."""
    host = socket.gethostname()
    report: FailureReport = {
        "format": REPORT_FORMAT, "job": job_id(environ), "worker": worker_name(args),
        "host": host, "pid": os.getpid(), "kind": kind,
        "message": mask(message, environ), "log": mask(log[-4000:], environ),
        "time": time.time(),
    }
    directory = reports_dir(store, key)
    path = os.path.join(directory, f"failed-{re.sub(r'[^A-Za-z0-9.-]', '_', host)}"
                                   f"-{os.getpid()}.json")
    try:
        os.makedirs(directory, exist_ok=True)
        with open(path + ".partial", "w", encoding="utf-8") as handle:
            json.dump(report, handle)
        os.replace(path + ".partial", path)
    except OSError:
        return ""
    return path
