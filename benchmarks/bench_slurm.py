"""Time to two SLURM workers ready: ``packsync.jobqueue(SLURMCluster, ...)``, cold and warm,
against plain dask-jobqueue ``SLURMCluster`` started with an environment already built.

A real one-node SLURM cluster (tests/support/slurm.py) runs the jobs. Cold: the jobs'
cache is empty (each unpacks the environment from the shared store) and so is the client's
(it builds and packs the environment first); new nodes: only the jobs' cache is empty.
Warm: both caches hold it. The baseline's
``python=`` is the client's own venv, byte-compiled as the environments packsync unpacks
are. Every number is printed beside the baseline of the same run; timings on a shared
machine are evidence, not a test.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.support

from tests.support import slurm as slurm_support  # noqa: E402
from tests.support.venvs import BASE_PYTHON, make_client  # noqa: E402

COMMON = r"""
import json, os, time
from dask_jobqueue import SLURMCluster
options = dict(cores=1, processes=1, memory="1GB", queue="debug", walltime="00:10:00",
               log_directory=os.environ["LOGS"],
               scheduler_options={"host": "127.0.0.1", "dashboard_address": None})
"""

PACKSYNC = COMMON + r"""
import packsync
start = time.perf_counter()
with packsync.jobqueue(SLURMCluster, store=os.environ["SHARED"], python=os.environ["PYTHON"],
                       host_cache_dir=os.environ["JOB_CACHE"], **options) as cluster:
    prepared = time.perf_counter() - start
    cluster.scale(jobs=2)
    with cluster.get_client() as client:
        client.wait_for_workers(2, timeout=600)
        ready = time.perf_counter() - start
print(json.dumps({"seconds": ready, "prepare": prepared}))
"""

DASK = COMMON + r"""
from distributed import Client
start = time.perf_counter()
with SLURMCluster(python=os.environ["PYTHON"], **options) as cluster:
    cluster.scale(jobs=2)
    with Client(cluster) as client:
        client.wait_for_workers(2, timeout=600)
        ready = time.perf_counter() - start
print(json.dumps({"seconds": ready}))
"""


def main() -> None:
    if slurm_support.missing():
        raise SystemExit(f"SLURM is not installed ({', '.join(slurm_support.missing())}): "
                         "make system-packages installs it")
    with tempfile.TemporaryDirectory(prefix="bench-slurm-") as tmp:
        root = Path(tmp)
        client = make_client(root, "httpx", "dask-jobqueue", compile_bytecode=True)
        (client.workdir / "helpers.py").write_text("VALUE = 1\n")
        common = {"LOGS": str(root / "logs"), "SHARED": str(root / "shared"),
                  "JOB_CACHE": str(root / "job-cache")}
        with slurm_support.slurm_cluster() as slurm:
            env = {**slurm.env, **common}
            cold = client.json_run(PACKSYNC, timeout=900, PYTHON=BASE_PYTHON, **env)
            warm = [client.json_run(PACKSYNC, timeout=900, PYTHON=BASE_PYTHON, **env)
                    for _ in range(3)]
            new_nodes = client.json_run(PACKSYNC, timeout=900, PYTHON=BASE_PYTHON,
                                        **{**env, "JOB_CACHE": str(root / "new-job-cache")})
            dask = [client.json_run(DASK, timeout=900, PYTHON=str(client.python), **env)
                    for _ in range(3)]
            slurm.wait_empty()
    best_warm = min(warm, key=lambda w: float(w["seconds"]))
    best_dask = min(float(d["seconds"]) for d in dask)
    print(f"two SLURM workers ready, one node, {os.cpu_count()} cores "
          "(best of 3 for warm and plain dask-jobqueue; in brackets: preparing here):")
    for label, run in (("packsync cold (all caches empty)", cold),
                       ("packsync, new nodes (jobs' cache empty)", new_nodes),
                       ("packsync warm", best_warm)):
        seconds = float(run["seconds"])
        print(f"  {label:41s} {seconds:6.2f} s ({float(run['prepare']):4.1f} s)  "
              f"{seconds / best_dask:5.1f}x")
    print(f"  {'SLURMCluster, pre-built byte-compiled env':41s} {best_dask:6.2f} s"
          "           1.0x")


if __name__ == "__main__":
    main()
