"""What one edited file of a local package costs at relaunch, against a relaunch with nothing
changed, both measured in the same run and the same venv.

An edit changes the package's source-tree hash: its wheel is rebuilt and stored, the lock
is resolved again (its local wheel hash changed) and a new environment is materialized;
every other local package is reused untouched. Printed, not asserted.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

from bench_launch import REPO, child, hermetic_env, run, stop_strays, uv_binary
from rich.console import Console
from rich.table import Table

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


def local_project(root: Path, name: str) -> Path:
    (root / "src" / name).mkdir(parents=True)
    (root / "src" / name / "__init__.py").write_text("VALUE = 0\n")
    (root / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [project]
        name = "{name}"
        version = "0.1.0"
        [build-system]
        requires = ["hatchling"]
        build-backend = "hatchling.build"
        [tool.hatch.build.targets.wheel]
        packages = ["src/{name}"]
        """))
    return root


def main() -> int:
    console = Console()
    tmp = Path(tempfile.mkdtemp(prefix="packsync-bench-rebuild-"))
    try:
        venv, cache, work = tmp / "venv", tmp / "cache", tmp / "work"
        work.mkdir()
        script = work / "bench_child.py"
        script.write_text(CHILD)
        env = hermetic_env(cache)
        uv = uv_binary()
        base = os.path.realpath(getattr(sys, "_base_executable", "") or sys.executable)
        edited = local_project(tmp / "benchpkg", "benchpkg")
        other = local_project(tmp / "otherpkg", "otherpkg")
        console.print(f"building the benchmark venv from {base} …")
        run([uv, "venv", "--quiet", "--python", base, str(venv)], env, tmp)
        run([uv, "pip", "install", "--quiet", "--compile-bytecode", "--python",
             str(venv / "bin" / "python"), str(REPO), "httpx", "-e", str(edited),
             "-e", str(other)], env, tmp)
        python = venv / "bin" / "python"
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
