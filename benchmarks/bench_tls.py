"""What TLS by default costs: relaunch and ``sync()`` with and without it, same run.

Every cluster is TLS-authenticated with credentials of its own unless told otherwise
(``packsync.launch.security``). This times, in one process and one byte-compiled venv
with a warm cache, alternating: a relaunch of a 2-worker cluster (until both workers
are ready, the credentials made at launch included) and ``Cluster.sync()`` of one
edited file to both workers, with TLS (the default) and with ``security=False``.
Printed, not asserted.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.support

from tests.support.processes import child, stop_strays  # noqa: E402
from tests.support.venvs import BASE_PYTHON, make_client  # noqa: E402

LAUNCHES = 4  # per mode, alternating
SYNCS = 4  # per launch

CHILD = r"""
import json, os, statistics, sys, time
import packsync
import helpers

LAUNCHES, SYNCS = int(sys.argv[1]), int(sys.argv[2])
times = {mode: {"launch": [], "sync": []} for mode in ("tls", "tcp")}
version = 0

def write(version):
    with open("helpers.py.tmp", "w") as handle:
        handle.write(f"def f():\n    return {version}\n")
    os.replace("helpers.py.tmp", "helpers.py")

packsync.Cluster(n_workers=2, threads_per_worker=1, dashboard_address=None).close()  # warm
for _ in range(LAUNCHES):
    for mode, security in (("tls", None), ("tcp", False)):
        start = time.perf_counter()
        cluster = packsync.Cluster(n_workers=2, threads_per_worker=1, dashboard_address=None,
                                   security=security)
        client = cluster.get_client()
        client.wait_for_workers(2)
        times[mode]["launch"].append(time.perf_counter() - start)
        if not cluster.scheduler_address.startswith(mode):
            raise SystemExit(f"{mode} asked, {cluster.scheduler_address} started")
        for _ in range(SYNCS):
            version += 1
            write(version)
            start = time.perf_counter()
            cluster.sync()
            times[mode]["sync"].append(time.perf_counter() - start)
            if set(client.run(helpers.f).values()) != {version}:
                raise SystemExit("a worker missed the sync")
        client.close()
        cluster.close()
print(json.dumps({mode: {k: statistics.median(v) for k, v in t.items()}
                  for mode, t in times.items()}))
"""


def main() -> int:
    console = Console()
    tmp = Path(tempfile.mkdtemp(prefix="packsync-bench-tls-"))
    try:
        console.print(f"building the benchmark venv from {BASE_PYTHON} …")
        client = make_client(tmp, compile_bytecode=True)
        script = client.workdir / "bench_child.py"
        script.write_text(CHILD)
        (client.workdir / "helpers.py").write_text("def f():\n    return 0\n")
        console.print(f"{LAUNCHES} relaunches and {LAUNCHES * SYNCS} syncs each way …")
        result: dict[str, Any] = child(client.python, script, client.env(), str(LAUNCHES),
                                       str(SYNCS))
    finally:
        stop_strays(tmp)
        shutil.rmtree(tmp, ignore_errors=True)

    table = Table("2 local workers", "TLS (default)", "no TLS", "TLS cost",
                  title="TLS with per-cluster credentials")
    for key, label in (("launch", "relaunch, warm cache"), ("sync", "sync() of one file")):
        tls, tcp = result["tls"][key], result["tcp"][key]
        table.add_row(label, f"{tls * 1000:.0f} ms", f"{tcp * 1000:.0f} ms",
                      f"{(tls - tcp) * 1000:+.0f} ms")
    console.print(table)
    console.print(f"medians of {LAUNCHES} relaunches and {LAUNCHES * SYNCS} syncs each, "
                  "alternating")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
