"""Time to a ready two-host SSH cluster: packsync (cold and warm host caches) against Dask's
``SSHCluster`` started with an environment already built on the same hosts.

Two OpenSSH servers on loopback stand for two clean hosts (tests/support/sshd.py):
their own HOME and cache, the client's venv hidden. Every number is printed beside the
baseline of the same run; timings on a shared machine are evidence, not a test.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support import sshd  # noqa: E402
from tests.support.venvs import BASE_PYTHON, UV, hermetic_env  # noqa: E402

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


def run(python: Path, code: str, cwd: Path, **env: str) -> dict[str, object]:
    script = cwd / "_bench.py"
    script.write_text(code)
    done = subprocess.run([str(python), str(script)], cwd=cwd, capture_output=True, text=True,
                          env=hermetic_env(**env), timeout=900)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-ssh-") as tmp:
        root = Path(tmp)
        venv = root / "client"
        subprocess.run([UV, "venv", "--quiet", "--python", BASE_PYTHON, str(venv)], check=True,
                       env=hermetic_env())
        subprocess.run([UV, "pip", "install", "--quiet", "--compile-bytecode", "--python",
                        str(venv / "bin" / "python"), str(REPO), "httpx", "asyncssh"],
                       check=True, env=hermetic_env())
        work = root / "work"
        work.mkdir()
        key = sshd.client_key(root / "key")
        hosts = [sshd.start_host(n, root, key, (str(venv), str(REPO))) for n in ("a", "b")]
        try:
            specs = [h.spec(python=BASE_PYTHON) for h in hosts]
            common = {"HOSTS": json.dumps(specs), "PACKSYNC_CACHE_DIR": str(root / "cache")}
            python = venv / "bin" / "python"
            cold = run(python, PACKSYNC, work, **common)
            warm = [run(python, PACKSYNC, work, **common) for _ in range(3)]
            dask = [run(python, DASK, work, ENVS=json.dumps(cold["envs"]), **common)
                    for _ in range(3)]
        finally:
            for host in hosts:
                host.stop()
    best_warm = min(float(w["seconds"]) for w in warm)  # type: ignore[arg-type]
    best_dask = min(float(d["seconds"]) for d in dask)  # type: ignore[arg-type]
    cold_s = float(cold["seconds"])  # type: ignore[arg-type]
    print("two SSH hosts, ready cluster (best of 3 for warm and Dask):")
    print(f"  packsync cold (empty host caches): {cold_s:6.2f} s  "
          f"{cold_s / best_dask:5.1f}x Dask SSHCluster with a pre-built env")
    print(f"  packsync warm (cache hits {warm[0]['hits']}): {best_warm:6.2f} s  "
          f"{best_warm / best_dask:5.1f}x")
    print(f"  Dask SSHCluster, pre-built env:   {best_dask:6.2f} s  1.0x")


if __name__ == "__main__":
    main()
