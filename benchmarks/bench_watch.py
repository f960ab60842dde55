"""``Cluster(watch=True)``: watchfiles against polling, in the same run and the same venv.

Two numbers for each way of noticing a save (``packsync.watch-method``: ``auto`` uses
watchfiles, ``polling`` walks the code every ``packsync.watch-interval``, 0.5 s):

- latency: from a file saved (written beside and renamed over, as editors do) to every
  worker running the new code, probed with ``client.run`` every 5 ms; median of the edits;
- idle CPU: CPU time of the client process over 10 s with nothing edited, against the
  same cluster without ``watch`` (the scheduler runs in the client process and has
  an idle cost of its own).

The working directory is a project of ``PACKAGES`` packages of ``MODULES`` modules each.
Printed, not asserted.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.support

from tests.support.processes import child, stop_strays  # noqa: E402
from tests.support.venvs import make_client  # noqa: E402

EDITS = 9
IDLE_SECONDS = 10
PACKAGES, MODULES = 12, 16

CHILD = r"""
import json, os, sys, time
import dask
import packsync

method, edits, idle = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])


def save(value):
    with open("helpers_bench.py.tmp", "w") as handle:
        handle.write(f"VALUE = {value}\n")
    os.replace("helpers_bench.py.tmp", "helpers_bench.py")


def value():
    import helpers_bench
    return helpers_bench.VALUE


config = {"packsync.watch-method": "polling" if method == "polling" else "auto"}
with dask.config.set(config):
    cluster = packsync.Cluster(n_workers=1, threads_per_worker=1, dashboard_address=None,
                               watch=method != "off")
client = cluster.get_client()
client.wait_for_workers(1)
time.sleep(2)  # the launch's own work settles

cpu, wall = time.process_time(), time.perf_counter()
time.sleep(idle)
idle_cpu = (time.process_time() - cpu) / (time.perf_counter() - wall)

latencies = []
for edit in range(1, edits + 1 if method != "off" else 1):
    save(edit)
    start = time.perf_counter()
    while set(client.run(value).values()) != {edit}:
        time.sleep(0.005)
    latencies.append(time.perf_counter() - start)
    time.sleep(0.3 + 0.11 * (edit % 4))  # saves fall anywhere in the poll period
watching = cluster._watcher.describe() if cluster._watcher is not None else "off"
client.close()
cluster.close()
print(json.dumps({"idle_cpu": idle_cpu, "latencies": latencies, "watching": watching,
                  "files": len(cluster.live_code.manifest)}))
"""


def write_workdir(work: Path) -> None:
    """A working directory as a project has it: packages of modules, and the edited one."""
    (work / "helpers_bench.py").write_text("VALUE = 0\n")
    for p in range(PACKAGES):
        package = work / f"package_{p:02d}"
        package.mkdir()
        (package / "__init__.py").write_text("")
        for m in range(MODULES):
            (package / f"module_{m:02d}.py").write_text(
                f"def f():\n    return {m}\n# {'z' * 1000}\n")


def main() -> int:
    console = Console()
    tmp = Path(tempfile.mkdtemp(prefix="packsync-bench-watch-"))
    try:
        console.print("building the benchmark venv …")
        client = make_client(tmp, compile_bytecode=True)
        python, env = client.python, client.env()
        script = client.workdir / "bench_child.py"
        script.write_text(CHILD)
        write_workdir(client.workdir)
        results: dict[str, dict[str, Any]] = {}
        for method in ("off", "polling", "watchfiles"):
            console.print(f"watch: {method} …")
            results[method] = child(python, script, env, method, str(EDITS), str(IDLE_SECONDS))
    finally:
        stop_strays(tmp)
        shutil.rmtree(tmp, ignore_errors=True)

    polling, native, off = results["polling"], results["watchfiles"], results["off"]
    poll_latency = statistics.median(polling["latencies"])
    native_latency = statistics.median(native["latencies"])
    table = Table("Cluster(watch=True)", "polling", "watchfiles", "watchfiles / polling",
                  title="noticing a save: watchfiles against polling")
    table.add_row(
        f"save → every worker runs it (median of {EDITS})", f"{poll_latency * 1000:.0f} ms",
        f"{native_latency * 1000:.0f} ms", f"{native_latency / poll_latency:.2f}x",
    )  # fmt: skip
    table.add_row(
        "  slowest", f"{max(polling['latencies']) * 1000:.0f} ms",
        f"{max(native['latencies']) * 1000:.0f} ms", "",
    )  # fmt: skip
    poll_cost = polling["idle_cpu"] - off["idle_cpu"]
    native_cost = native["idle_cpu"] - off["idle_cpu"]
    table.add_row(
        f"idle client CPU over {IDLE_SECONDS} s", f"{polling['idle_cpu']:.2%}",
        f"{native['idle_cpu']:.2%}", "",
    )  # fmt: skip
    table.add_row(
        f"  of which the watcher (minus watch=False: {off['idle_cpu']:.2%})",
        f"{poll_cost:.2%}", f"{native_cost:.2%}",
        f"{native_cost / poll_cost:.2f}x" if poll_cost > 0 else "",
    )  # fmt: skip
    console.print(table)
    console.print(
        f"{polling['files']} files travel ({PACKAGES} packages of {MODULES} modules); "
        f"watching: {polling['watching']} / {native['watching']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
