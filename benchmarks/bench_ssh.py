"""Time to a ready two-host SSH cluster: packsync (cold and warm host caches) against Dask's
``SSHCluster`` started with an environment already built on the same hosts.

Two OpenSSH servers on loopback stand for two clean hosts (tests/support/sshd.py):
their own HOME and cache, the client's venv hidden. Every number is printed beside the
baseline of the same run; timings on a shared machine are evidence, not a test.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.support

from tests.support import sshd  # noqa: E402
from tests.support.venvs import BASE_PYTHON, REPO, make_client  # noqa: E402

PACKSYNC = r"""
import json, os, time, packsync
hosts = json.loads(os.environ["HOSTS"])
start = time.perf_counter()
with packsync.Cluster(hosts=hosts, threads_per_worker=1, dashboard_address=None) as cluster:
    with cluster.get_client() as client:
        client.wait_for_workers(len(hosts))
        ready = time.perf_counter() - start
    envs = [h.env_python for h in cluster._hosts.prepared]
    hits = [h.cache_hit for h in cluster._hosts.prepared]
print(json.dumps({"seconds": ready, "envs": envs, "hits": hits}))
"""

DASK = r"""
import json, os, time
from distributed import Client, SSHCluster
hosts = json.loads(os.environ["HOSTS"])
envs = json.loads(os.environ["ENVS"])
start = time.perf_counter()
options = [{**h["connect_options"], "port": h["port"]} for h in hosts]
with SSHCluster([hosts[0]["address"]] + [h["address"] for h in hosts],  # scheduler on the first
                connect_options=[options[0]] + options,
                remote_python=[envs[0]] + envs,
                worker_options={"nthreads": 1},
                scheduler_options={"port": 0, "dashboard_address": None}) as cluster:
    with Client(cluster) as client:
        client.wait_for_workers(len(hosts))
        ready = time.perf_counter() - start
print(json.dumps({"seconds": ready}))
"""


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-ssh-") as tmp:
        root = Path(tmp)
        client = make_client(root, "httpx", "asyncssh", compile_bytecode=True)
        key = sshd.client_key(root / "key")
        with sshd.loopback_hosts(("a", "b"), root, key, (str(client.path), str(REPO))) as hosts:
            hosts_env = json.dumps([h.spec(python=BASE_PYTHON) for h in hosts])
            cold = client.json_run(PACKSYNC, timeout=900, HOSTS=hosts_env)
            warm = [client.json_run(PACKSYNC, timeout=900, HOSTS=hosts_env) for _ in range(3)]
            dask = [client.json_run(DASK, timeout=900, HOSTS=hosts_env,
                                    ENVS=json.dumps(cold["envs"])) for _ in range(3)]
    best_warm = min(float(w["seconds"]) for w in warm)
    best_dask = min(float(d["seconds"]) for d in dask)
    cold_s = float(cold["seconds"])
    print("two SSH hosts, ready cluster (best of 3 for warm and Dask):")
    print(f"  packsync cold (empty host caches): {cold_s:6.2f} s  "
          f"{cold_s / best_dask:5.1f}x Dask SSHCluster with a pre-built env")
    print(f"  packsync warm (cache hits {warm[0]['hits']}): {best_warm:6.2f} s  "
          f"{best_warm / best_dask:5.1f}x")
    print(f"  Dask SSHCluster, pre-built env:   {best_dask:6.2f} s  1.0x")


if __name__ == "__main__":
    main()
