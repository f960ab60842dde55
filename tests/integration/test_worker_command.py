"""packsync worker-command with a real deployer: dask-jobqueue's local job queue."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .conftest import BASE_PYTHON, REPO, UV, ClientEnv, hermetic_env

pytestmark = pytest.mark.integration

JOBQUEUE = """
import json, os, sys
import packsync
from packsync.workercommand import worker_command
from packsync.verify import verify_client
from dask_jobqueue.local import LocalCluster as JobQueueCluster
from distributed import Client

command = worker_command(store=os.environ["SHARED"], python=os.environ["WORKER_PYTHON"],
                         host_cache_dir=os.environ["WORKER_CACHE"])
with JobQueueCluster(cores=1, processes=1, memory="1GB", python=command.python,
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
    venv = tmp_path / "client"
    subprocess.run([UV, "venv", "--quiet", "--python", BASE_PYTHON, str(venv)], check=True,
                   env=hermetic_env())
    workdir = tmp_path / "work"
    workdir.mkdir()
    client = ClientEnv(path=venv, cache=tmp_path / "cache", workdir=workdir)
    client.install(str(REPO), "dask-jobqueue")
    (workdir / "helper.py").write_text("VALUE = 7\n")
    shared, worker_cache = tmp_path / "shared", tmp_path / "worker-cache"

    result = json.loads(client.run(JOBQUEUE, SHARED=str(shared), WORKER_PYTHON=BASE_PYTHON,
                                   WORKER_CACHE=str(worker_cache)).stdout.strip().splitlines()[-1])
    assert result["prefixes"] and all(p.startswith(str(worker_cache / "envs")) for p in result["prefixes"])
    assert result["helper"] == 7  # working-directory code from the shared store
    assert result["differences"] == 0
    assert " worker --store " in result["script"] and "-m distributed.cli.dask_worker" in result["script"]

    cli = client.packsync("worker-command", "--store", str(shared), "--json")
    assert cli.returncode == 0, cli.stderr
    argv = json.loads(cli.stdout)
    again = subprocess.run([*argv, "-c", "import sys; print(sys.prefix)"], capture_output=True,
                           text=True, env=hermetic_env(PACKSYNC_CACHE_DIR=str(worker_cache)),
                           timeout=300)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().startswith(str(worker_cache / "envs"))
