"""What the damage check costs a relaunch: the same whole-process relaunch with and without it.

A relaunch finds its environment ready and, before using it, checks every file against the
record made when it became ready (``hostside.contents``: one ``lstat`` per file, the hash
of the few files that run code at start). This times whole processes that start a
2-worker ``packsync.Cluster`` from a warm cache, alternating (a) as shipped and (b) with
the file comparison replaced by nothing (the marker, owner and lock are still checked), in
a byte-compiled client venv holding pandas (an environment of thousands of files). It
also times the check alone. Target (printed, not asserted): the relaunch ratio a/b within
noise (≤ 1.05).
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

RUNS = 5
CHECKS = 15
TARGET = 1.05

RELAUNCH = r"""
import json, os, time
start = time.perf_counter()
import packsync
if os.environ.get("NO_FILE_CHECK"):
    from packsync.hostside import contents
    contents.differences = lambda root, recorded: []

if __name__ == "__main__":
    with packsync.Cluster(n_workers=2, dashboard_address=":0") as cluster:
        with cluster.get_client() as client:
            client.wait_for_workers(2)
        print(json.dumps({"seconds": time.perf_counter() - start,
                          "cache_hit": cluster.prepared.environment.cache_hit,
                          "env": str(cluster.prepared.environment.path)}))
"""

CHECK = r"""
import json, statistics, sys, time
from packsync.hostside import contents
env, runs = sys.argv[1], int(sys.argv[2])
samples = []
for _ in range(runs):
    start = time.perf_counter()
    problems = contents.examine(env, None)
    samples.append(time.perf_counter() - start)
    assert problems == [], problems
print(json.dumps({"seconds": statistics.median(samples), "files": len(contents.walk(env))}))
"""


def main(runs: int = RUNS) -> int:
    console = Console()
    tmp = Path(tempfile.mkdtemp(prefix="packsync-bench-damage-"))
    try:
        console.print("building the byte-compiled client venv (pandas) …")
        client = make_client(tmp, "pandas", compile_bytecode=True)
        python, env, work = client.python, client.env(), client.workdir
        script = work / "relaunch.py"
        script.write_text(RELAUNCH)
        run([str(python), "-m", "compileall", "-q", "-j", "0", str(client.path / "lib")], env, tmp)
        console.print("warming the packsync cache …")
        run([str(python), str(script)], env, work)
        _, out = run([str(python), str(script)], env, work)
        environment = json.loads(out.strip().splitlines()[-1])["env"]
        console.print(f"{runs} relaunches of each, alternating …")
        checked, unchecked = [], []
        for _ in range(runs):
            for samples, extra in ((checked, {}), (unchecked, {"NO_FILE_CHECK": "1"})):
                _, out = run([str(python), str(script)], {**env, **extra}, work)
                result = json.loads(out.strip().splitlines()[-1])
                if not result["cache_hit"]:
                    console.print("[red]a relaunch missed the environment cache[/]")
                samples.append(result["seconds"])
        _, out = run([str(python), "-c", CHECK, environment, str(CHECKS)], env, work)
        alone = json.loads(out.strip().splitlines()[-1])
    finally:
        stop_strays(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
    a, b = statistics.median(checked), statistics.median(unchecked)
    table = Table("a / b", "a", "b", "a/b", "target", "met",
                  title="relaunch with the damage check against without it")
    table.add_row("packsync.Cluster relaunch, checked / not", f"{a:.2f} s", f"{b:.2f} s",
                  f"{a / b:.3f}x", f"≤ {TARGET}x", verdict(a <= TARGET * b))
    ms = alone["seconds"] * 1000
    table.add_row(f"the check alone ({alone['files']} files) / relaunch", f"{ms:.1f} ms",
                  f"{a:.2f} s", f"{alone['seconds'] / a:.1%}", "", "")
    console.print(table)
    console.print(f"medians of {runs} alternating whole-process relaunches and {CHECKS} checks")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*(int(a) for a in sys.argv[1:2])))
