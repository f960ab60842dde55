"""What a relaunch costs as a whole process: ``packsync.Cluster`` against a bare ``LocalCluster``.

A user who re-runs a script pays for everything: interpreter start, imports, scan, plan,
digest, the cache check and the worker processes. So this times whole processes, each a
script that starts a 2-worker cluster, waits for both workers and closes it: (a) with
``packsync.Cluster`` from a warm cache, (b) with ``distributed.LocalCluster``, alternating,
in the same byte-compiled client venv. It also times what ``import packsync`` adds once
``distributed`` is imported. Targets are printed, not asserted.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from bench_launch import verdict
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.support

from tests.support.processes import run, stop_strays  # noqa: E402
from tests.support.venvs import make_client  # noqa: E402

RUNS = 7
IMPORT_RUNS = 15
TARGET = 1.1
IMPORT_TARGET_MS = 50.0

PACKSYNC_SCRIPT = r"""
import json
import packsync

if __name__ == "__main__":
    with packsync.Cluster(n_workers=2, dashboard_address=":0") as cluster:
        with cluster.get_client() as client:
            client.wait_for_workers(2)
        print(json.dumps({"timings": cluster.timings,
                          "cache_hit": cluster.prepared.environment.cache_hit}))
"""

BARE_SCRIPT = r"""
from distributed import LocalCluster

if __name__ == "__main__":
    with LocalCluster(n_workers=2, dashboard_address=":0") as cluster:
        with cluster.get_client() as client:
            client.wait_for_workers(2)
"""

# Seconds `import packsync` takes once distributed is imported, and the modules it loaded.
IMPORT_PROBE = r"""
import json, sys, time
import distributed
before = set(sys.modules)
start = time.perf_counter()
import packsync
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "loaded": sorted(set(sys.modules) - before)}))
"""


def import_costs(python: Path, env: dict[str, str], cwd: Path) -> tuple[float, list[str]]:
    """Median seconds of ``import packsync`` after ``import distributed``, and what it loads."""
    samples, loaded = [], []
    for _ in range(IMPORT_RUNS):
        _, out = run([str(python), "-c", IMPORT_PROBE], env, cwd)
        result = json.loads(out.strip().splitlines()[-1])
        samples.append(result["seconds"])
        loaded = result["loaded"]
    return statistics.median(samples), loaded


def main(runs: int = RUNS) -> int:
    """Build the venv, warm the cache, time ``runs`` relaunches of each, print one table."""
    console = Console()
    tmp = Path(tempfile.mkdtemp(prefix="packsync-bench-relaunch-"))
    try:
        console.print("building the byte-compiled client venv …")
        client = make_client(tmp, compile_bytecode=True)
        python, env, work = client.python, client.env(), client.workdir
        packsync_script, bare_script = work / "with_packsync.py", work / "bare.py"
        packsync_script.write_text(PACKSYNC_SCRIPT)
        bare_script.write_text(BARE_SCRIPT)
        # uv compiled site-packages; the rest of lib too, as TESTBED's fair baseline has it
        run([str(python), "-m", "compileall", "-q", "-j", "0", str(client.path / "lib")], env, tmp)

        console.print("warming the packsync cache (cold launch, then one warm) …")
        cold_seconds, _ = run([str(python), str(packsync_script)], env, work)
        run([str(python), str(packsync_script)], env, work)
        console.print(f"{runs} relaunches of each, alternating …")
        with_packsync, bare, timings = [], [], []
        for _ in range(runs):
            seconds, out = run([str(python), str(bare_script)], env, work)
            bare.append(seconds)
            seconds, out = run([str(python), str(packsync_script)], env, work)
            with_packsync.append(seconds)
            result = json.loads(out.strip().splitlines()[-1])
            if not result["cache_hit"]:
                console.print("[red]a warm relaunch missed the environment cache[/]")
            timings.append(result["timings"])
        console.print(f"import packsync after import distributed, {IMPORT_RUNS} times …")
        import_seconds, loaded = import_costs(python, env, work)
    finally:
        stop_strays(tmp)
        shutil.rmtree(tmp, ignore_errors=True)

    a, b = statistics.median(with_packsync), statistics.median(bare)
    ms = import_seconds * 1000
    table = Table("a / b", "a", "b", "a/b", "target", "met",
                  title="whole-process relaunch against a bare LocalCluster")
    table.add_row(
        "packsync.Cluster / LocalCluster script", f"{a:.2f} s", f"{b:.2f} s", f"{a / b:.2f}x",
        f"≤ {TARGET}x", verdict(a <= TARGET * b),
    )  # fmt: skip
    table.add_row(
        "import distributed, packsync / import distributed", f"+{ms:.1f} ms", "", "",
        f"≤ +{IMPORT_TARGET_MS:.0f} ms", verdict(ms <= IMPORT_TARGET_MS),
    )  # fmt: skip
    console.print(table)
    stages = Table("stage", "median seconds", title="packsync.Cluster stages in the relaunches")
    for name in timings[0]:
        stages.add_row(name, f"{statistics.median(t.get(name, 0.0) for t in timings):.3f}")
    console.print(stages)
    heavy = [m for m in loaded if "." not in m and not m.startswith(("_", "packsync"))]
    console.print(
        f"medians of {runs} alternating relaunches and {IMPORT_RUNS} imports; cold launch "
        f"{cold_seconds:.1f} s; `import packsync` loaded {len(loaded)} modules, top-level "
        f"packages besides packsync: {', '.join(heavy) or 'none'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*(int(a) for a in sys.argv[1:2])))
