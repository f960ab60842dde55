"""Cold launches on 1, 2, 4 (and more) SSH hosts: artifact mode against index mode, and
against Dask's ``SSHCluster`` on an environment already built there.

For each number of hosts every launch starts from empty host caches. Printed per row:
seconds to a ready cluster, the bytes the client itself sent (its uplink), and the bytes
the hosts downloaded from the package indexes (the size of their uv caches afterwards:
index load), and the CPU time the whole machine spent meanwhile (client and hosts share
its cores, so a launch takes at least that time divided by the number of cores). The
client's own cache is warm (its environment built once, before), as on a laptop that
already ran the cluster locally. Each host has a disk of its own (``sshd.SshHost``), as a
real host does. Usage: ``python bench_fanout.py [MAX_HOSTS]``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.support

from bench_ssh import DASK  # noqa: E402
from tests.support import sshd  # noqa: E402
from tests.support.venvs import BASE_PYTHON, REPO, make_client  # noqa: E402

LAUNCH = r"""
import json, os, time, packsync
hosts = json.loads(os.environ["HOSTS"])
start = time.perf_counter()
with packsync.Cluster(hosts=hosts, threads_per_worker=1, dashboard_address=None,
                      host_install=os.environ["MODE"]) as cluster:
    with cluster.get_client() as client:
        client.wait_for_workers(len(hosts))
        ready = time.perf_counter() - start
    prepared = cluster._hosts.prepared
print(json.dumps({"seconds": ready, "sent": sum(h.sent_bytes for h in prepared),
                  "envs": [h.env_python for h in prepared]}))
"""


def busy_seconds() -> float:
    """CPU time this machine spent so far, on every core, outside idle and I/O wait."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def measured(client: Any, code: str, **extra: str) -> tuple[dict[str, Any], float]:
    """What ``code`` printed, and the machine's CPU seconds while it ran."""
    before = busy_seconds()
    done = client.json_run(code, timeout=900, **extra)
    return done, busy_seconds() - before


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def main(max_hosts: int) -> None:
    counts = [n for n in (1, 2, 4, 8, 16) if n <= max_hosts]
    rows: list[tuple[int, str, float, int, int, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
        root = Path(tmp)
        client = make_client(root, "httpx", "asyncssh", compile_bytecode=True)
        key = sshd.client_key(root / "key")
        names = [f"h{n}" for n in range(max(counts))]
        with sshd.loopback_hosts(names, root, key, (str(client.path), str(REPO)),
                                 own_disk=True) as hosts:
            warm_up = [hosts[0].spec(python=BASE_PYTHON, cache_dir="~/.cache/warm-up")]
            client.json_run(LAUNCH, timeout=900, HOSTS=json.dumps(warm_up), MODE="artifact")
            for count in counts:
                for mode in ("artifact", "index"):
                    cache = f".cache/bench-{mode}-{count}"
                    specs = [h.spec(python=BASE_PYTHON, cache_dir=f"~/{cache}")
                             for h in hosts[:count]]
                    for host in hosts[:count]:  # each host's uv cache counts its downloads
                        subprocess.run(["rm", "-rf", str(host.home / ".cache" / "uv")])
                    done, cpu = measured(client, LAUNCH, HOSTS=json.dumps(specs), MODE=mode)
                    downloaded = sum(tree_bytes(h.home / ".cache" / "uv")
                                     for h in hosts[:count] if (h.home / ".cache" / "uv").exists())
                    rows.append((count, mode, float(done["seconds"]), int(done["sent"]),
                                 downloaded, cpu))
                    if mode == "artifact":
                        envs = done["envs"]
                dask = min((measured(client, DASK, HOSTS=json.dumps(specs),
                                     ENVS=json.dumps(envs)) for _ in range(2)),
                           key=lambda run: float(run[0]["seconds"]))
                rows.append((count, "Dask SSHCluster, env pre-built",
                             float(dask[0]["seconds"]), 0, 0, dask[1]))
    print("cold launches on empty host caches (client cache warm):")
    print(f"{'hosts':>5}  {'how':<32} {'ready':>8} {'vs Dask':>8} {'client sent':>12} "
          f"{'hosts from index':>17} {'CPU':>8}")
    baseline = {n: s for n, how, s, *_ in rows if how.startswith("Dask")}
    for count, how, seconds, sent, downloaded, cpu in rows:
        print(f"{count:>5}  {how:<32} {seconds:7.2f}s {seconds / baseline[count]:7.1f}x "
              f"{sent / 1e6:10.1f}MB {downloaded / 1e6:15.1f}MB {cpu:7.2f}s")
    print(f"CPU: the whole machine's, {os.cpu_count()} cores, from the launch process's start "
          "to its end (so with Python's start-up and the cluster's close)")
    artifact = {n: (s, sent) for n, how, s, sent, *_ in rows if how == "artifact"}
    index = {n: d for n, how, _, _, d, _ in rows if how == "index"}
    first, last = counts[0], counts[-1]
    print(f"client upload, {last} hosts / {first} host (artifact): "
          f"{artifact[last][1] / max(artifact[first][1], 1):.2f}x")
    print(f"index downloads by hosts, {last} hosts (index mode): {index[last] / 1e6:.1f} MB; "
          f"artifact mode: 0 MB")
    if 2 in artifact:
        print(f"2 hosts cold, artifact: {artifact[2][0] / baseline[2]:.2f}x Dask SSHCluster on a "
              f"pre-built env (target <= 2x)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 4)
