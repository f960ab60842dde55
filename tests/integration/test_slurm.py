"""packsync.jobqueue on a real batch system: one-node SLURM, dask-jobqueue's SLURMCluster.

The daemons (munged, slurmctld, slurmd) are started once for this module by
``tests.support.slurm`` and stopped at its end; every job is a real ``sbatch`` job whose
worker unpacks the environment from the shared store into a cache of its own.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import slurm as slurm_support
from tests.support.private_index import MESSAGE, serve_index
from tests.support.venvs import BASE_PYTHON, REPO, ClientEnv, hermetic_env, make_client

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def slurm() -> Iterator[slurm_support.Slurm]:
    absent = slurm_support.missing()
    if absent or os.geteuid() != 0:
        reason = (f"SLURM programs missing: {', '.join(absent)} (make system-packages "
                  "installs slurm-wlm and munge)" if absent else "the SLURM daemons need root")
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    with slurm_support.slurm_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def seed_client(tmp_path_factory: pytest.TempPathFactory) -> ClientEnv:
    """A client venv with packsync, httpx, dask-jobqueue and the seed demo's local package
    (editable); its working directory is a copy of the seed demo."""
    root = tmp_path_factory.mktemp("slurm-client")
    demo = root / "seed_demo"
    shutil.copytree(REPO / "examples" / "seed_demo", demo,
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    client = make_client(root, "httpx", "dask-jobqueue")
    client.install("-e", str(demo / "my_local_package"))
    shutil.copytree(demo, client.workdir, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("my_local_package"))
    return client


CLUSTER = """
import json, os, sys
from dask_jobqueue import SLURMCluster
from distributed import Client
import packsync

class Steps:
    def __init__(self): self.steps = []
    def stage_started(self, stage, detail): pass
    def stage_finished(self, stage, seconds, detail): pass
    def step(self, stage, message): self.steps.append(message)

def slurm_cluster(store, cache, **extra):
    return packsync.jobqueue(
        SLURMCluster, cores=1, processes=1, memory="1GB", queue="debug", walltime="00:10:00",
        store=store, python=os.environ["WORKER_PYTHON"], host_cache_dir=cache,
        log_directory=os.environ["LOGS"], reporter=REPORTER,
        scheduler_options={"host": "127.0.0.1", "dashboard_address": None}, **extra)

REPORTER = Steps()
"""

SEED = CLUSTER + """
import importlib, subprocess, time
from run_demo import func, start_server, worker_facts

server = start_server()
url = f"http://127.0.0.1:{server.server_address[1]}/foo"
out = {}
with slurm_cluster(os.environ["SHARED"], os.environ["WORKER_CACHE"]) as cluster:
    out["job_script"] = cluster.job_script()
    out["argv"] = list(cluster.command.argv)
    out["isinstance"] = isinstance(cluster, SLURMCluster)
    cluster.scale(jobs=1)
    with Client(cluster) as client:
        client.wait_for_workers(1, timeout=180)
        out["result"] = func(url).compute()
        out["facts"] = list(client.run(worker_facts).values())
        cluster.adapt(minimum=2, maximum=2)         # a worker added later is checked too
        client.wait_for_workers(2, timeout=180)
        out["verified"] = list(cluster.verification.verified)
        out["ok"] = cluster.verification.ok
        with open("helpers.py", "a") as handle:     # a live edit while the workers run
            handle.write("\\nEDITED = 'live'\\n")
        out["sync"] = cluster.sync().sent
        out["edited"] = list(client.run(
            lambda: getattr(importlib.import_module("helpers"), "EDITED", None)).values())
        out["jobs_running"] = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True,
                                             text=True).stdout.split()
server.shutdown()
out["steps"] = REPORTER.steps
deadline = time.monotonic() + 60
while (left := subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True,
                              text=True).stdout.split()) and time.monotonic() < deadline:
    time.sleep(0.2)
out["jobs_left"] = left
print(json.dumps(out))
"""


def _workers_run(client: ClientEnv, slurm: slurm_support.Slurm, code: str, **extra: str) -> Any:
    return client.json_run(code, timeout=600, WORKER_PYTHON=BASE_PYTHON,
                           LOGS=str(client.workdir.parent / "logs"), **slurm.env, **extra)


def _stray_workers(cache: Path) -> list[str]:
    """Processes still running an interpreter of ``cache`` (a worker a job left behind)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv and os.fsdecode(argv[0]).startswith(str(cache)):
                found.append(entry.name)
    return found


def test_the_seed_example_runs_on_slurm_workers_in_the_replicated_environment(
        slurm: slurm_support.Slurm, seed_client: ClientEnv, tmp_path: Path):
    shared, worker_cache = tmp_path / "shared", tmp_path / "worker-cache"
    out = _workers_run(seed_client, slurm, SEED, SHARED=str(shared),
                       WORKER_CACHE=str(worker_cache))

    assert out["isinstance"]  # dask-jobqueue's own class: job_script(), scale(jobs=), adapt()
    assert "#SBATCH -p debug" in out["job_script"] and "--report" in out["job_script"]
    result = out["result"]
    assert result["count"] == 8 and result["sum"] == 31.0
    assert result["processed_by"] == "my_local_package 0.3.0"
    for facts in out["facts"]:  # the worker's own interpreter, unpacked in the job's cache
        assert facts["prefix"].startswith(str(worker_cache / "envs"))
        assert facts["my_local_package"] == "0.3.0"
    assert len(out["verified"]) == 2 and out["ok"]  # the adapt()ed worker was checked too
    assert sum("joined" in step for step in out["steps"]) == 2
    assert out["sync"] == ["helpers.py"] and out["edited"] == ["live", "live"]
    assert len(out["jobs_running"]) == 2
    assert out["jobs_left"] == [] and slurm.squeue() == []  # close() cancelled every job
    assert _stray_workers(worker_cache) == []

    # the same command in a job with no network at all: the artifact from the store suffices
    argv = out["argv"]
    offline_cache = tmp_path / "offline-cache"
    job = subprocess.run(
        ["sbatch", "--wait", "-o", str(tmp_path / "offline.out"), "-e",
         str(tmp_path / "offline.err"), "--wrap",
         shlex.join(["unshare", "--net", *argv, "-c", "import sys; print(sys.prefix)"])],
        capture_output=True, text=True, timeout=300,
        env=hermetic_env(**slurm.env, PACKSYNC_CACHE_DIR=str(offline_cache)))
    argv_cache = argv[argv.index("--cache") + 1]
    assert job.returncode == 0, (tmp_path / "offline.err").read_text()
    assert (tmp_path / "offline.out").read_text().strip().startswith(str(Path(argv_cache)))


BROKEN = CLUSTER + """
import glob, time
from packsync.errors import LaunchError
from packsync.launch.worker_command import WorkerJobError

def first_worker(cluster):
    cluster.scale(jobs=1)
    with Client(cluster) as client:
        try:
            client.wait_for_workers(1, timeout=300)
        except LaunchError as error:
            return {"error": str(error), "host": error.host, "hint": error.hint,
                    "type": type(error).__name__, "failures": len(cluster.failures),
                    "retired": len(cluster.verification.retired)}
        return {"type": None}

def watched():
    return list(Client.current().run(
        lambda: __import__("importlib").import_module("watched").VALUE).values())

made = os.environ["WORKER_CACHE"] + "-made"
with open("watched.py", "w") as handle:
    handle.write("VALUE = 1\\n")
with slurm_cluster(os.environ["SHARED"], made, watch=True) as cluster:
    ok = first_worker(cluster)
    with Client(cluster):
        ok["before"] = watched()
        with open("watched.py", "w") as handle:   # saved: no sync() called
            handle.write("VALUE = 2\\n")
        deadline = time.monotonic() + 60
        while (seen := watched()) != [2] and time.monotonic() < deadline:
            time.sleep(0.2)
        ok["after"] = seen
# an environment changed after packsync made it, so as to look untouched (same size and
# time: the ready marker's record is satisfied): its worker is retired, and the client told
[metadata] = glob.glob(made + "/envs/*/lib/python*/site-packages/cloudpickle-*.dist-info/METADATA")
with open(metadata) as handle:
    text = handle.read()
before = os.stat(metadata)
version = text.split("\\nVersion: ", 1)[1].split("\\n", 1)[0]
fake = "9" * len(version)
with open(metadata, "w") as handle:
    handle.write(text.replace(f"\\nVersion: {version}\\n", f"\\nVersion: {fake}\\n", 1))
os.utime(metadata, ns=(before.st_atime_ns, before.st_mtime_ns))
with slurm_cluster(os.environ["SHARED"], made) as cluster:
    altered = first_worker(cluster)
altered["fake"] = fake

# the store not mounted where the job runs: the job says so on stderr, read from its .err
unmounted = os.environ["SHARED"] + "-unmounted"
with slurm_cluster(unmounted, os.environ["WORKER_CACHE"]) as cluster:
    os.rename(unmounted, unmounted + ".away")
    try:
        not_mounted = first_worker(cluster)
    finally:
        os.rename(unmounted + ".away", unmounted)

with slurm_cluster(os.environ["SHARED"], os.environ["WORKER_CACHE"]) as cluster:
    argv = cluster.command.argv
    manifest = argv[argv.index("--artifact") + 1]
    os.unlink(os.path.join(os.environ["SHARED"], "sha256", manifest[:2], manifest))
    out = first_worker(cluster)
print(json.dumps({"ok": ok, "altered": altered, "missing": out, "not_mounted": not_mounted}))
"""


def test_a_job_that_cannot_make_the_environment_is_reported_at_the_client_as_is_an_altered_one(
        slurm: slurm_support.Slurm, seed_client: ClientEnv, tmp_path: Path):
    found = _workers_run(seed_client, slurm, BROKEN, SHARED=str(tmp_path / "shared"),
                         WORKER_CACHE=str(tmp_path / "worker-cache"))
    assert found["ok"] == {"type": None, "before": [1], "after": [2]}  # watch=True synced
    altered = found["altered"]
    # the job's worker is retired; the job that replaces it, on the same machine and cache,
    # may join and be retired too before the error reaches wait_for_workers
    assert altered["type"] == "LaunchError" and altered["retired"] >= 1, altered
    assert " worker(s) retired: " in altered["error"]
    assert "cloudpickle: lock " in altered["error"] and f"has {altered['fake']}" in altered[
        "error"]
    assert " on 127.0.0.1 (job " in altered["error"]  # the worker's address, and its job
    not_mounted = found["not_mounted"]
    assert not_mounted["type"] == "WorkerJobError", not_mounted
    assert f"on {slurm.node}: " in not_mounted["error"] and "job " in not_mounted["error"]
    assert "is not there; is the shared store mounted" in not_mounted["error"]
    out = found["missing"]
    assert out["type"] == "WorkerJobError", out  # not a WorkerStartTimeoutError
    assert "environment manifest" in out["error"] and "missing or altered" in out["error"]
    assert f"on {slurm.node}" in out["error"] and "job " in out["error"]
    assert out["host"] == slurm.node and "mounted" in out["hint"]
    assert out["failures"] == 1
    assert slurm.wait_empty() == []
    assert not (tmp_path / "shared" / "jobs").exists() or not any(
        (tmp_path / "shared" / "jobs").iterdir())  # the reports went with the cluster


PRIVATE = CLUSTER + """
from packsync.launch.worker_command import WorkerJobError

def attempt(prologue):
    with slurm_cluster(os.environ["SHARED"], os.environ["WORKER_CACHE"], install="index",
                       job_script_prologue=prologue,
                       job_extra_directives=["--export=NONE"]) as cluster:
        cluster.scale(jobs=1)
        with Client(cluster) as client:
            try:
                client.wait_for_workers(1, timeout=300)
            except WorkerJobError as error:
                return {"error": str(error), "log": error.log_tail, "script": cluster.job_script()}
            probe = client.submit(lambda: __import__("psprivate_probe").MESSAGE).result()
            inherited = client.run(lambda: sorted(
                k for k in __import__("os").environ if k.startswith("UV_INDEX")))
            return {"probe": probe, "inherited": list(inherited.values()),
                    "script": cluster.job_script()}

base, secret = json.loads(os.environ["PROLOGUE"])
print(json.dumps({"without": attempt(base), "with": attempt(base + secret)}))
"""


def test_private_index_credentials_come_from_the_jobs_environment(
        slurm: slurm_support.Slurm, tmp_path: Path):
    user, password = "alice", "pw-" + secrets.token_hex(12)
    with serve_index(tmp_path / "index", {user: password}) as index:
        client = make_client(tmp_path, "dask-jobqueue")
        index.install_probe(client.python, user, password)
        credentials = {"UV_INDEX_PRIVATE_USERNAME": user, "UV_INDEX_PRIVATE_PASSWORD": password}
        secret_file = tmp_path / "job-credentials.sh"  # what only the user can read
        secret_file.write_text("".join(f"export {k}={v}\n" for k, v in credentials.items()))
        secret_file.chmod(0o600)
        # --export=NONE: the job's environment is a login one, plus what its script sets
        base = [f"export UV_CACHE_DIR={tmp_path / 'job-uv-cache'}"]  # no wheel cached here
        if os.environ.get("SSL_CERT_FILE"):  # what this sandbox needs to reach PyPI
            base.append(f"export SSL_CERT_FILE={os.environ['SSL_CERT_FILE']}")
        prologue = [base, [f". {secret_file}"]]
        out = _workers_run(client, slurm, PRIVATE, SHARED=str(tmp_path / "shared"),
                           WORKER_CACHE=str(tmp_path / "worker-cache"),
                           PROLOGUE=json.dumps(prologue),
                           UV_INDEX=f"private={index.url}", NETRC=str(tmp_path / "none"),
                           **credentials)
    # the client holds the credentials, but no job gets them from it: without its own the
    # job is refused by the index, and the client is told so
    assert "401" in out["without"]["error"] + out["without"]["log"], out["without"]
    assert out["with"]["probe"] == MESSAGE, out["with"]
    assert out["with"]["inherited"] == [[]]  # the worker inherits no index secret
    for text in (json.dumps(out["without"]), out["with"]["script"]):
        assert password not in text
    for place in (tmp_path / "shared", tmp_path / "worker-cache", tmp_path / "cache",
                  tmp_path / "logs"):
        for path in place.rglob("*") if place.exists() else ():
            if path.is_file() and not path.is_symlink():
                assert password.encode() not in path.read_bytes(), path
    assert slurm.wait_empty() == []
