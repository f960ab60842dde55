"""What one edited file of a local package costs at relaunch, against a relaunch with nothing
changed, both measured in the same run and the same venv.

An edit changes the package's source-tree hash: its wheel is rebuilt and stored, the lock
is resolved again (its local wheel hash changed) and a new environment is materialized;
every other local package is reused untouched. Printed, not asserted.
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
from tests.support.projects import make_project  # noqa: E402
from tests.support.venvs import BASE_PYTHON, make_client  # noqa: E402

ROUNDS = 3

CHILD = r"""
import json, time
import packsync


def launch():
    start = time.perf_counter()
    cluster = packsync.Cluster(n_workers=2, dashboard_address=":0")
    client = cluster.get_client()
    client.wait_for_workers(2)
    seconds = time.perf_counter() - start
    value = client.submit(lambda: __import__("benchpkg").VALUE).result()
    result = {"seconds": seconds, "timings": cluster.timings, "value": value,
              "cache_hit": cluster.prepared.environment.cache_hit}
    client.close()
    cluster.close()
    return result


if __name__ == "__main__":
    print(json.dumps(launch()))
"""


def main() -> int:
    console = Console()
    tmp = Path(tempfile.mkdtemp(prefix="packsync-bench-rebuild-"))
    try:
        edited = make_project(tmp / "benchpkg", "benchpkg", "VALUE = 0\n")
        other = make_project(tmp / "otherpkg", "otherpkg", "VALUE = 0\n")
        console.print(f"building the benchmark venv from {BASE_PYTHON} …")
        client = make_client(tmp, "httpx", "-e", str(edited), "-e", str(other),
                             compile_bytecode=True)
        python, env = client.python, client.env()
        script = client.workdir / "bench_child.py"
        script.write_text(CHILD)
        console.print("first launch (cold cache) …")
        first = child(python, script, env)
        unchanged: list[dict[str, Any]] = []
        changed: list[dict[str, Any]] = []
        module = edited / "src" / "benchpkg" / "__init__.py"
        for i in range(ROUNDS):
            console.print(f"round {i + 1}: relaunch unchanged, then after editing one file …")
            unchanged.append(child(python, script, env))
            module.write_text(f"VALUE = {i + 1}\n")
            changed.append(child(python, script, env))
            if changed[-1]["value"] != i + 1 or changed[-1]["cache_hit"]:
                console.print("[red]the edited relaunch did not run the edited code[/]")
    finally:
        stop_strays(tmp)
        shutil.rmtree(tmp, ignore_errors=True)

    same = statistics.median(r["seconds"] for r in unchanged)
    edit = statistics.median(r["seconds"] for r in changed)
    table = Table("a / b", "a", "b", "a/b", title="relaunch after editing one local file")
    table.add_row("edited / unchanged", f"{edit:.2f} s", f"{same:.2f} s", f"{edit / same:.2f}x")
    console.print(table)
    stages = sorted({s for r in unchanged + changed for s in r["timings"]})
    breakdown = Table("relaunch", *stages, title="stage seconds (median)")
    for label, runs in (("first (cold)", [first]), ("unchanged", unchanged), ("edited", changed)):
        breakdown.add_row(label, *(
            f"{statistics.median(r['timings'].get(s, 0.0) for r in runs):.3f}" for s in stages
        ))
    console.print(breakdown)
    console.print(f"medians of {ROUNDS} rounds; 2 local editable packages, one edited per round;"
                  f" the first launch (one run, {first['seconds']:.2f} s) builds with no earlier"
                  " environment")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
