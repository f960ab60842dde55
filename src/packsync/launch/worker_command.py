"""A worker command for any Dask deployer (dask-jobqueue, dask-kubernetes, a shell job).

``worker_command(store=DIR)`` locks this environment, builds it here and packs it into
``DIR`` (a shared filesystem) as a verified archive, beside the code bundle and
packsync's standard-library host side, each named by its SHA-256, and returns a command
that behaves like a Python interpreter: run as
``COMMAND -m distributed.cli.dask_worker tcp://...`` on any machine that sees ``DIR``,
it checks the host side's hash, unpacks the environment into that machine's cache
(once; later jobs find it with one ``stat``) and execs the environment's own interpreter
with the same arguments. The machine needs Python of the client's major.minor, and
neither packsync nor an index, a Git server or the internet.

``install="index"`` makes each machine install the lock from the package indexes
instead. Index credentials never go into the store or the command: the command names
each index that needed credentials here (its URL without userinfo, and a uv index
name), and the job's own environment authenticates to it, as uv does: the deployer sets
``UV_INDEX_<NAME>_USERNAME``/``_PASSWORD`` (a Kubernetes secret, a batch job's
environment) or gives the machine a netrc. An index whose URL carries a token in its path
or query (Cloudsmith, Gemfury, ``?token=``) is named with the token as its lock
placeholder, and the job gives its full URL in ``UV_INDEX_<NAME>_URL``
(``JobIndex.url_variable``); the lock in the store holds placeholders only. The Dask
worker it then starts does not inherit those variables.

A job that cannot make the environment (the store not mounted or altered, the disk full,
no index, another Python) exits before its worker starts, so Dask never hears of it:
the command writes a report into ``DIR/jobs/<key>/`` (``packsync.hostside.jobreport``,
secrets masked), which ``WorkerCommand.failures()`` reads on the client.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from packsync import serial
from packsync.codesync.bundle import CodeBundle, publish_code
from packsync.errors import LaunchError, StoreError
from packsync.hostside import jobreport, loader, placeholders, uvconfig
from packsync.hostside.layout import blob_path
from packsync.launch.hosts.prepare import HOST_INSTALLS, HostInstall
from packsync.lock.lockfile import Lock
from packsync.materialize.artifacts import environment_artifact
from packsync.materialize.environments import materialize
from packsync.model import PlanOptions
from packsync.pipeline import Locked, lock_environment
from packsync.progress import Reporter
from packsync.scan.indexes import IndexSettings
from packsync.scan.workdir import CodeRules
from packsync.store import LocalStore, Store, sha256_file
from packsync.uvtool import uv_binary

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True, slots=True)
class JobIndex:
    """An index the workers' machines must authenticate to themselves."""

    name: str  # uv's index name: the variables are UV_INDEX_<NAME>_USERNAME / _PASSWORD
    url: str  # without userinfo; a token in its path or query as {packsync-secret:<label>}
    credentials: bool = True  # a username and password (or token) came from somewhere here

    @property
    def variables(self) -> tuple[str, str]:
        """The environment variables a job sets to give uv this index's credentials."""
        return f"{self._prefix}USERNAME", f"{self._prefix}PASSWORD"

    @property
    def url_variable(self) -> str:
        """The variable a job sets to the index's full URL when that URL carries a token
        (``url`` holds a placeholder): packsync's, read by the command, not by uv."""
        return f"{self._prefix}URL" if placeholders.labels_in(self.url) else ""

    @property
    def _prefix(self) -> str:
        return uvconfig.index_prefix(self.name)


@dataclass(frozen=True, kw_only=True, slots=True)
class WorkerCommand:
    """A command prefix to use where a deployer expects the workers' Python interpreter."""

    argv: tuple[str, ...]
    lock: Lock
    store: str
    indexes: tuple[JobIndex, ...] = ()  # each needs credentials from the job's environment
    report_key: str = ""  # failed jobs report under ``<store>/jobs/<report_key>/``
    # what this machine kept of its making, for live code (in memory only)
    locked: Locked | None = field(default=None, repr=False, compare=False)
    code: CodeBundle | None = field(default=None, repr=False, compare=False)

    @property
    def python(self) -> str:
        """The prefix as one shell string (dask-jobqueue's ``python=``)."""
        return shlex.join(self.argv)

    def write_script(self, path: str | os.PathLike[str]) -> Path:
        """The command as an executable shell script (``python=`` for deployers that split
        the command on spaces, as dask-jobqueue's local job queue does)."""
        script = Path(path)
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(f'#!/bin/sh\nexec {self.python} "$@"\n', encoding="utf-8")
        script.chmod(0o755)
        return script

    def dask_worker(self, scheduler: str, *args: str) -> tuple[str, ...]:
        """The full command of one worker (a Kubernetes container's ``command``)."""
        return (*self.argv, "-m", "distributed.cli.dask_worker", scheduler, *args)

    @property
    def reports(self) -> Path:
        """Where jobs of this command that could not start report why."""
        return Path(jobreport.reports_dir(self.store, self.report_key))

    def failures(self) -> list[JobFailure]:
        """The jobs of this command that could not make the environment, oldest first."""
        return read_failures(self.reports) if self.report_key else []


@dataclass(frozen=True, kw_only=True, slots=True)
class JobFailure:
    """One job that could not start its worker, as it reported it (secrets masked)."""

    job: str  # the batch system's job id, "" outside one
    worker: str  # the Dask worker's name, "" if the command line gave none
    host: str
    kind: str
    message: str
    log: str
    time: float
    path: str  # the report file

    def describe(self) -> str:
        job = f"job {self.job}" if self.job else "a job"
        worker = f" (worker {self.worker})" if self.worker else ""
        return f"{job}{worker} on {self.host}: {self.message}"


class WorkerJobError(LaunchError):
    """Jobs could not make the environment on their machines: no worker will come from them."""


def job_error(failures: list[JobFailure]) -> WorkerJobError:
    """One error naming every failed job, its machine and why; the first log's tail."""
    first = failures[0]
    return WorkerJobError(
        f"{len(failures)} job(s) could not start a worker:\n  "
        + "\n  ".join(f.describe() for f in failures),
        host=", ".join(sorted({f.host for f in failures})),
        log_tail=first.log,
        hint=_HINTS.get(first.kind, "the job's stderr (its .err file) says the same"),
    )


_STORE_HINT = ("is the shared store mounted at the same path on the compute nodes, and "
               "complete? Making the worker command again publishes it again")
_ALTERED_HINT = "an object of the shared store changed after it was written: make the " \
                "worker command again"
_HINTS = {
    "store": _STORE_HINT, "missing": _STORE_HINT,
    "integrity": _ALTERED_HINT, "hostile": _ALTERED_HINT, "format": _ALTERED_HINT,
    "disk": "the job's cache directory (host_cache_dir=, $PACKSYNC_CACHE_DIR) must be "
            "writable, with room for the environment",
    "platform": "the compute nodes need a Python of the client's major.minor (python=) on "
                "the client's platform",
    "materialize": "the log above is uv's: with install='index' the compute nodes must "
                   "reach the indexes and authenticate to them themselves",
    "credentials": "set the variables WorkerCommand.indexes names in the jobs' environment "
                   "(a batch script's export, a Kubernetes secret)",
}


def read_failures(directory: str | os.PathLike[str]) -> list[JobFailure]:
    """The reports in ``directory``; one that is not a report is logged and skipped."""
    found: list[JobFailure] = []
    try:
        paths = sorted(Path(directory).glob("failed-*.json"))
    except OSError:
        return []
    for path in paths:
        try:
            report = serial.from_data(jobreport.FailureReport,
                                      json.loads(path.read_text(encoding="utf-8")), str(path))
        except (OSError, ValueError) as error:
            logger.warning("skipping %s: not a job failure report (%s)", path, error)
            continue
        found.append(JobFailure(job=report["job"], worker=report["worker"],
                                host=report["host"], kind=report["kind"],
                                message=report["message"], log=report["log"],
                                time=report["time"], path=str(path)))
    return sorted(found, key=lambda f: f.time)


def worker_command(
    *,
    store: str | os.PathLike[str],
    python: str = "python3",
    host_cache_dir: str | None = None,
    options: PlanOptions | None = None,
    cache: str | os.PathLike[str] | None = None,
    reporter: Reporter | None = None,
    install: HostInstall = "artifact",
    code_rules: CodeRules | None = None,
    link: str = "",
) -> WorkerCommand:
    """Lock this environment into the shared directory ``store``; the command that uses it.

    ``python`` is the interpreter name or path on the worker machines (same
    major.minor as here); ``host_cache_dir`` their cache (default
    ``$PACKSYNC_CACHE_DIR`` there, else ``~/.cache/packsync``); ``install`` how they
    get the environment: ``"artifact"`` (unpacked from the store) or ``"index"``;
    ``code_rules`` which working-directory files travel (default: the Dask config's);
    ``link`` the name of a live code link the processes import through, which a
    ``sync()`` swaps to newer code (default: none, the code of this call).
    """
    if install not in HOST_INSTALLS:
        raise ValueError(f"install={install!r} is not one of {HOST_INSTALLS}")
    directory = os.path.abspath(os.fspath(store))
    if "://" in os.fspath(store):
        raise StoreError(
            f"worker commands read the store as a directory; {store} is not one",
            path=str(store),
            hint="give a directory every worker machine mounts (NFS, a cluster filesystem)",
        )
    locked = lock_environment(options=options, cache=cache, store=directory, reporter=reporter)
    target = locked.store
    if not isinstance(target, LocalStore):  # pragma: no cover - a directory gives a LocalStore
        raise StoreError(f"{directory} did not open as a directory store", path=directory)
    lock = locked.lock
    code = publish_code(locked.snapshot.code_paths, store=target, reporter=reporter,
                        rules=code_rules)
    package_sha = _put_bytes(target, loader.package())
    _put_bytes(target, lock.text.encode())
    argv = [
        python, "-I", "-c", loader.BOOTSTRAP, blob_path(directory, package_sha), package_sha,
        "worker", "--store", directory, "--lock", lock.digest,
    ]
    indexes: tuple[JobIndex, ...] = ()
    if install == "artifact":
        environment = materialize(lock, cache=locked.cache, store=target,
                                  uv_env=locked.settings.uv_environment(), reporter=reporter)
        packed = environment_artifact(
            environment, lock, store=target, cache=locked.cache,
            workers_platform=locked.plan.target.platform, reporter=reporter)
        argv += ["--artifact", packed.sha256]
    else:
        uv = Path(uv_binary())
        uv_sha = sha256_file(uv)
        target.put(uv, uv_sha)
        argv += ["--uv", uv_sha]
        if lock.local_wheels:
            argv += ["--wheels",
                     ",".join(f"{w.filename}={w.sha256}" for w in lock.local_wheels)]
        indexes = job_indexes(locked.settings)
        for index in indexes:
            argv += ["--index", f"{index.name}={index.url}"]
        index_options = locked.settings.index_options()
        if index_options:  # uv's per-index settings, no secret in them
            argv += ["--index-options",
                     _put_bytes(target, json.dumps(index_options).encode())]
    if code is not None:
        argv += ["--code", code.sha256]
    if host_cache_dir:
        argv += ["--cache", host_cache_dir]
    if link:
        argv += ["--link", link]
    report_key = uuid.uuid4().hex[:16]
    argv += ["--report", report_key, "--"]
    return WorkerCommand(argv=tuple(argv), lock=lock, store=directory, indexes=indexes,
                         report_key=report_key, locked=locked, code=code)


def job_indexes(settings: IndexSettings) -> tuple[JobIndex, ...]:
    """The indexes that needed credentials here or carry a token in their URL, named as
    uv names them, minus the secrets (a token as its lock placeholder).

    A named uv index keeps its name; any other is named after its host
    (``pkgs.example.com`` -> ``pkgs-example-com``), so a deployer knows which
    ``UV_INDEX_<NAME>_*`` variables to set.
    """
    found: list[JobIndex] = []
    for index in settings.indexes:
        if index.role not in ("default", "extra") or not index.url.startswith(("http://",
                                                                               "https://")):
            continue
        url = settings.masked_url(index)
        credentials = settings.credentials(index) is not None
        if not credentials and url == index.plain_url:
            continue
        name = index.name or re.sub(r"[^a-z0-9]+", "-", urlsplit(index.url).hostname or "")
        name = name.strip("-") or "index"
        taken = {i.name for i in found}
        unique, number = name, 2
        while unique in taken:
            unique, number = f"{name}-{number}", number + 1
        found.append(JobIndex(name=unique, url=url, credentials=credentials))
    return tuple(found)


def _put_bytes(store: Store, data: bytes) -> str:
    with tempfile.TemporaryDirectory(prefix="packsync-put-") as tmp:
        path = Path(tmp) / "object"
        path.write_bytes(data)
        sha256 = sha256_file(path)
        store.put(path, sha256)
    return sha256
