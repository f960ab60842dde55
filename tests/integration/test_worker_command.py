"""packsync worker-command with a real deployer: dask-jobqueue's local job queue."""

from __future__ import annotations

import json
import secrets
import subprocess
from pathlib import Path

import pytest

from tests.support.private_index import MESSAGE, serve_index
from tests.support.venvs import BASE_PYTHON, hermetic_env, make_client, run_job

pytestmark = pytest.mark.integration

JOBQUEUE = """
import json, os, sys
import packsync
from packsync.launch.worker_command import worker_command
from packsync.launch.verify import verify_client
from dask_jobqueue.local import LocalCluster as JobQueueCluster
from distributed import Client

command = worker_command(store=os.environ["SHARED"], python=os.environ["WORKER_PYTHON"],
                         host_cache_dir=os.environ["WORKER_CACHE"])
# the local job queue splits python= on spaces: the command goes in a script
script = command.write_script(os.path.join(os.environ["SHARED"], "..", "worker-python"))
with JobQueueCluster(cores=1, processes=1, memory="1GB", python=str(script),
                     scheduler_options={"host": "127.0.0.1", "dashboard_address": None}) as cluster:
    cluster.scale(1)
    with Client(cluster) as client:
        client.wait_for_workers(1, timeout=300)
        prefixes = list(client.run(lambda: __import__("sys").prefix).values())
        helper = client.submit(lambda: __import__("helper").VALUE).result()
        differences = verify_client(client, command.lock)
print(json.dumps({"prefixes": prefixes, "helper": helper, "script": cluster.job_script(),
                  "differences": len([d for d in differences if d.severity != "notice"])}))
"""


def test_jobqueue_workers_run_in_the_materialized_environment(tmp_path: Path):
    client = make_client(tmp_path, "dask-jobqueue")
    (client.workdir / "helper.py").write_text("VALUE = 7\n")
    shared, worker_cache = tmp_path / "shared", tmp_path / "worker-cache"

    result = json.loads(client.run(JOBQUEUE, SHARED=str(shared), WORKER_PYTHON=BASE_PYTHON,
                                   WORKER_CACHE=str(worker_cache)).stdout.strip().splitlines()[-1])
    assert result["prefixes"] and all(p.startswith(str(worker_cache / "envs")) for p in result["prefixes"])
    assert result["helper"] == 7  # working-directory code from the shared store
    assert result["differences"] == 0
    assert "worker-python -m distributed.cli.dask_worker" in result["script"]

    cli = client.packsync("worker-command", "--store", str(shared), "--json")
    assert cli.returncode == 0, cli.stderr
    argv = json.loads(cli.stdout)
    assert "--artifact" in argv and "--uv" not in argv

    def job(cache: Path, *, network: bool = True) -> subprocess.CompletedProcess[str]:
        prefix = [] if network else ["unshare", "--net"]  # no route to any index
        return subprocess.run([*prefix, *argv, "-c", "import sys; print(sys.prefix)"],
                              capture_output=True, text=True, timeout=300,
                              env=hermetic_env(PACKSYNC_CACHE_DIR=str(cache)))

    again = job(worker_cache)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().startswith(str(worker_cache / "envs"))
    offline = job(tmp_path / "offline-cache", network=False)  # a machine without an index
    assert offline.returncode == 0, offline.stderr
    assert offline.stdout.strip().startswith(str(tmp_path / "offline-cache" / "envs"))


@pytest.mark.attack("tampered shared-store code, script or archive")
def test_an_altered_store_is_refused_before_anything_runs(tmp_path: Path):
    client = make_client(tmp_path)
    (client.workdir / "helper.py").write_text("VALUE = 7\n")
    shared = tmp_path / "shared"
    made = client.run("import json, os; from packsync.launch.worker_command import "
                      "worker_command; print(json.dumps(worker_command(store=os.environ["
                      "'SHARED']).argv))", SHARED=str(shared))
    argv = json.loads(made.stdout.strip().splitlines()[-1])
    package = Path(argv[argv.index("-c") + 2])
    manifest = argv[argv.index("--artifact") + 1]
    code = argv[argv.index("--code") + 1]

    def job() -> subprocess.CompletedProcess[str]:
        return subprocess.run([*argv, "-c", "import helper; print(helper.VALUE)"],
                              capture_output=True, text=True, timeout=300,
                              env=hermetic_env(PACKSYNC_CACHE_DIR=str(tmp_path / "job-cache")))

    def altered(path: Path, data: bytes) -> subprocess.CompletedProcess[str]:
        original = path.read_bytes()
        path.write_bytes(data)
        try:
            return job()
        finally:
            path.write_bytes(original)

    def objects(sha256: str) -> Path:
        return shared / "sha256" / sha256[:2] / sha256

    hostile = altered(package, package.read_bytes() + b"\x00")
    assert hostile.returncode != 0 and "refusing to run it" in hostile.stderr
    chunk = json.loads(objects(manifest).read_text())["chunks"][0]["sha256"]
    truncated = altered(objects(chunk), objects(chunk).read_bytes()[:-10])
    assert truncated.returncode == 2 and "altered or truncated" in truncated.stderr
    assert not list((tmp_path / "job-cache" / "envs").glob("*/.packsync-ready"))
    wrong_code = altered(objects(code), b"PK not the bundle")
    assert wrong_code.returncode == 2 and "code bundle" in wrong_code.stderr
    fine = job()
    assert fine.returncode == 0 and fine.stdout.strip() == "7", fine.stderr


PROBE = ("import os, psprivate_probe; print(psprivate_probe.MESSAGE); "
         "print(sorted(k for k in os.environ if k.startswith('UV_INDEX')))")


def test_private_index_credentials_come_from_the_job_environment(tmp_path: Path):
    user, password = "alice", "pw-" + secrets.token_hex(12)
    with serve_index(tmp_path / "index", {user: password}) as index:
        client = make_client(tmp_path)
        index.install_probe(client.python, user, password)
        credentials = {"UV_INDEX_PRIVATE_USERNAME": user, "UV_INDEX_PRIVATE_PASSWORD": password}
        shared = tmp_path / "shared"
        made = client.packsync("worker-command", "--store", str(shared), "--json",
                               "--install", "index",
                               UV_INDEX=f"private={index.url}", NETRC=str(tmp_path / "none"),
                               **credentials)
        assert made.returncode == 0, made.stderr
        argv = json.loads(made.stdout)
        assert argv[argv.index("--index") + 1] == f"private={index.url}"
        assert "UV_INDEX_PRIVATE_USERNAME and UV_INDEX_PRIVATE_PASSWORD" in made.stderr

        def job(**extra: str) -> subprocess.CompletedProcess[str]:
            return run_job(argv, PROBE, tmp_path, **extra)

        refused = job()  # the job's environment has no credentials: the index says 401
        assert refused.returncode == 2 and "401" in refused.stderr, refused.stderr
        worked = job(**credentials)
        assert worked.returncode == 0, worked.stderr
        assert worked.stdout.splitlines() == [MESSAGE, "[]"]  # the worker inherits no secret
        for place in (shared, tmp_path / "worker-cache", tmp_path / "cache"):
            for path in place.rglob("*"):
                if path.is_file() and not path.is_symlink():
                    assert password.encode() not in path.read_bytes(), path
        for text in (made.stdout, made.stderr, refused.stderr, worked.stderr):
            assert password not in text
