"""How fast packsync scans, checks its cache and launches, against baselines of the same run.

Absolute times depend on the machine, so every number is printed beside a baseline
measured in the same run, in the same freshly built venv: ``packsync.scan()`` against
a bare ``importlib.metadata`` walk and ``pip freeze``; ``packsync.Cluster`` launches
(cold and warm cache) against a bare ``distributed.LocalCluster``. Targets are printed,
not asserted: timings on a shared machine are evidence, not a test.

The venv is installed with ``--compile-bytecode`` so that neither side pays for
compiling imports, and every child runs without the machine's pip configuration.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.support

from tests.support.processes import child, run, stop_strays  # noqa: E402
from tests.support.venvs import BASE_PYTHON, UV, make_client  # noqa: E402

SCAN_RUNS = 15
FREEZE_RUNS = 5
LAUNCH_RUNS = 3
CHECK_CALLS = 100

# Runs inside the benchmark venv; prints one JSON line, the measurement.
CHILD = r"""
import json, os, statistics, sys, time


def walk():
    from importlib.metadata import distributions
    return [(m["Name"], m["Version"]) for m in (d.metadata for d in distributions())]


def scan(runs):
    import packsync
    snapshot = packsync.scan()
    walked = walk()
    scans, walks = [], []
    for _ in range(runs):  # interleaved, so drift in the machine hits both alike
        start = time.perf_counter(); packsync.scan(); scans.append(time.perf_counter() - start)
        start = time.perf_counter(); walk(); walks.append(time.perf_counter() - start)
    return {"scan": statistics.median(scans), "walk": statistics.median(walks),
            "dists": len(snapshot.dists), "walked": len(walked)}


def launch(kind):
    import distributed
    if kind == "packsync":
        import packsync
        factory = packsync.Cluster
    else:
        factory = distributed.LocalCluster
    start = time.perf_counter()
    cluster = factory(n_workers=2, dashboard_address=":0")
    client = cluster.get_client()
    client.wait_for_workers(2)
    seconds = time.perf_counter() - start
    result = {"seconds": seconds}
    if kind == "packsync":
        result["timings"] = cluster.timings
        result["cache_hit"] = cluster.prepared.environment.cache_hit
    client.close()
    cluster.close()
    return result


def check(calls):
    from packsync.materialize.environments import ready_environment
    from packsync.pipeline import lock_environment
    locked = lock_environment(cache=os.environ["PACKSYNC_CACHE_DIR"])
    if ready_environment(locked.lock, locked.cache) is None:
        raise SystemExit("the environment is not ready: run a launch first")
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        ready_environment(locked.lock, locked.cache)
        samples.append(time.perf_counter() - start)
    return {"ms": statistics.median(samples) * 1000, "max_ms": max(samples) * 1000}


if __name__ == "__main__":
    mode, arg = sys.argv[1], sys.argv[2]
    result = {"scan": scan, "launch": launch, "check": check}[mode](
        int(arg) if arg.isdigit() else arg
    )
    print(json.dumps(result))
"""


def freeze_times(
    commands: dict[str, list[str]], env: dict[str, str], cwd: Path
) -> dict[str, float]:
    """Median wall time of each freeze command that works here (whole process)."""
    result = {}
    for label, command in commands.items():
        try:
            samples = [run(command, env, cwd)[0] for _ in range(FREEZE_RUNS)]
        except (OSError, RuntimeError) as error:
            print(f"skipping {label}: {error}", file=sys.stderr)
            continue
        result[label] = statistics.median(samples)
    return result


def verdict(ok: bool) -> str:
    return "[green]yes[/]" if ok else "[red]no[/]"


def main() -> int:
    """Build the venv, measure everything, print one table."""
    console = Console()
    tmp = Path(tempfile.mkdtemp(prefix="packsync-bench-"))
    try:
        console.print(f"building the benchmark venv from {BASE_PYTHON} …")
        client = make_client(tmp, "httpx", compile_bytecode=True)
        python, env, work = client.python, client.env(), client.workdir
        # the children's working directory: only the child script is "user code"
        script = work / "bench_child.py"
        script.write_text(CHILD)
        _, purelib = run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], env, tmp
        )

        console.print("scan …")
        scan = child(python, script, env, "scan", str(SCAN_RUNS))
        freezes = freeze_times(
            {
                "pip freeze": [BASE_PYTHON, "-m", "pip", "freeze", "--path", purelib.strip()],
                "uv pip freeze": [UV, "pip", "freeze", "--python", str(python)],
            },
            env,
            work,
        )

        console.print("launch: cold …")
        cold = child(python, script, env, "launch", "packsync")
        warm_runs, bare_runs = [], []
        for i in range(LAUNCH_RUNS):
            console.print(f"launch: bare LocalCluster and warm packsync, round {i + 1} …")
            bare_runs.append(child(python, script, env, "launch", "bare"))
            warm_runs.append(child(python, script, env, "launch", "packsync"))
        console.print("cache check …")
        check = child(python, script, env, "check", str(CHECK_CALLS))
    finally:
        stop_strays(tmp)
        shutil.rmtree(tmp, ignore_errors=True)

    bare = statistics.median(r["seconds"] for r in bare_runs)
    warm = statistics.median(r["seconds"] for r in warm_runs)
    if cold["cache_hit"] or not all(r["cache_hit"] for r in warm_runs):
        console.print("[red]the cold run hit the cache, or a warm run missed it[/]")

    ms = scan["scan"] * 1000
    table = Table("a / b", "a", "b", "a/b", "target", "met", title="packsync against baselines")
    walk_ratio = scan["scan"] / scan["walk"]
    table.add_row(
        "scan() / importlib walk", f"{ms:.1f} ms", f"{scan['walk'] * 1000:.1f} ms",
        f"{walk_ratio:.2f}x", "≤ 2x", verdict(walk_ratio <= 2),
    )  # fmt: skip
    for label, seconds in freezes.items():
        ratio = seconds / scan["scan"]
        targeted = label == "pip freeze"  # the target is about pip; uv's is for reference
        table.add_row(
            f"{label} / scan()", f"{seconds * 1000:.1f} ms", f"{ms:.1f} ms", f"{ratio:.1f}x",
            "≥ 10x" if targeted else "", verdict(ratio >= 10) if targeted else "",
        )  # fmt: skip
    table.add_row(
        "cold launch / LocalCluster", f"{cold['seconds']:.2f} s", f"{bare:.2f} s",
        f"{cold['seconds'] / bare:.2f}x", "", "",
    )  # fmt: skip
    table.add_row(
        "warm launch / LocalCluster", f"{warm:.2f} s", f"{bare:.2f} s",
        f"{warm / bare:.2f}x", "≤ 1.3x", verdict(warm <= 1.3 * bare),
    )  # fmt: skip
    table.add_row(
        "cache check (median, max)", f"{check['ms']:.3f} ms", f"{check['max_ms']:.3f} ms",
        "", "< 10 ms", verdict(check["ms"] < 10),
    )  # fmt: skip
    console.print(table)
    console.print(
        f"{scan['dists']} distributions scanned, {scan['walked']} walked; "
        f"medians of {SCAN_RUNS} scans, {FREEZE_RUNS} freezes, {LAUNCH_RUNS} warm/bare launches, "
        f"{CHECK_CALLS} cache checks; cold is one launch on an empty cache"
    )
    stages = Table("launch", *cold["timings"], title="packsync stage seconds")
    for label, result in [("cold", cold), *((f"warm {i + 1}", r) for i, r in enumerate(warm_runs))]:
        stages.add_row(label, *(f"{result['timings'].get(s, 0.0):.3f}" for s in cold["timings"]))
    console.print(stages)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
