"""What sending one edited working-directory file to 2 running workers costs, against the
ways a Dask user has without packsync: ``client.upload_file`` of the same file, and
relaunching the cluster. All measured in the same run and the same venv.

The working directory holds 40 modules (~2 KiB each); one, ``helpers.py``, is edited
between rounds. ``sync`` is ``Cluster.sync()`` (diff, store the bundle, apply on the
scheduler and both workers); ``visible`` adds a ``client.run`` proving every worker
runs the new code. The watcher's poll cost (stat of every file that travels) is
printed too. Printed, not asserted.
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

ROUNDS = 7
MODULES = 40

CHILD = r"""
import json, os, statistics, sys, time
import packsync
import helpers

ROUNDS = int(sys.argv[1])
PAD = "# " + "x" * 2000 + "\n"


def write(version):
    with open("helpers.py.tmp", "w") as handle:
        handle.write(f"def f():\n    return {version}\n" + PAD)
    os.replace("helpers.py.tmp", "helpers.py")  # as editors save


def check(client, version):
    values = set(client.run(helpers.f).values())
    if values != {version}:
        raise SystemExit(f"workers run {values}, not {version}")


def launch():
    start = time.perf_counter()
    cluster = packsync.Cluster(n_workers=2, threads_per_worker=1, dashboard_address=":0")
    client = cluster.get_client()
    client.wait_for_workers(2)
    return cluster, client, time.perf_counter() - start


cluster, client, first_launch = launch()
client.run(helpers.f)  # the workers have imported helpers: a sync must make them forget it
version, syncs, visible, noops, sent = 0, [], [], [], set()
for _ in range(ROUNDS):
    version += 1
    write(version)
    start = time.perf_counter()
    result = cluster.sync()
    syncs.append(time.perf_counter() - start)
    check(client, version)
    visible.append(time.perf_counter() - start)
    sent.update(result.sent)
    start = time.perf_counter()
    cluster.sync()
    noops.append(time.perf_counter() - start)
live = cluster.live_code
polls = []
for _ in range(20):
    start = time.perf_counter()
    live.fingerprint()
    polls.append(time.perf_counter() - start)
bundle_bytes = sum(os.path.getsize(os.path.join(live.link, p)) for p in live.manifest)

# Baseline 1: what Dask offers on a running cluster (after packsync's rounds: an uploaded
# module shadows the code directory from then on).
uploads, uploads_visible = [], []
for _ in range(ROUNDS):
    version += 1
    write(version)
    start = time.perf_counter()
    client.upload_file("helpers.py")
    uploads.append(time.perf_counter() - start)
    check(client, version)
    uploads_visible.append(time.perf_counter() - start)
client.close()
cluster.close()

# Baseline 2: relaunch (environment cached, so this is the cheapest relaunch there is).
relaunches = []
for _ in range(2):
    start = time.perf_counter()
    cluster, client, seconds = launch()
    check(client, version)
    relaunches.append(time.perf_counter() - start)
    client.close()
    cluster.close()

median = statistics.median
print(json.dumps({
    "sync": median(syncs), "visible": median(visible), "noop": median(noops),
    "upload": median(uploads), "upload_visible": median(uploads_visible),
    "relaunch": median(relaunches), "first_launch": first_launch,
    "poll_ms": median(polls) * 1000, "sent": sorted(sent), "files": len(live.manifest),
    "bundle_bytes": bundle_bytes,
    "changed_bytes": os.path.getsize("helpers.py"),
}))
"""


def main() -> int:
    """Build the venv and the working directory, measure, print one table."""
    console = Console()
    tmp = Path(tempfile.mkdtemp(prefix="packsync-bench-sync-"))
    try:
        console.print(f"building the benchmark venv from {BASE_PYTHON} …")
        client = make_client(tmp, compile_bytecode=True)
        work = client.workdir
        script = work / "bench_child.py"
        script.write_text(CHILD)
        (work / "helpers.py").write_text("def f():\n    return 0\n")
        for i in range(MODULES - 1):
            (work / f"module_{i:02d}.py").write_text(f"X = {i}\n# {'y' * 2000}\n")
        console.print(f"{ROUNDS} edits synced, then uploaded, then 2 relaunches …")
        result: dict[str, Any] = child(client.python, script, client.env(), str(ROUNDS))
    finally:
        stop_strays(tmp)
        shutil.rmtree(tmp, ignore_errors=True)

    table = Table("one edited file → 2 running workers", "seconds", "vs Cluster.sync()",
                  title="live code sync against baselines")
    sync = result["sync"]
    rows = [
        ("Cluster.sync()", sync),
        ("Cluster.sync() + every worker runs it", result["visible"]),
        ("Cluster.sync(), nothing changed", result["noop"]),
        ("client.upload_file()", result["upload"]),
        ("client.upload_file() + every worker runs it", result["upload_visible"]),
        ("relaunch packsync.Cluster (warm cache)", result["relaunch"]),
    ]
    for label, seconds in rows:
        table.add_row(label, f"{seconds * 1000:.1f} ms", f"{seconds / sync:.2f}x")
    console.print(table)
    console.print(
        f"sent {result['sent']} ({result['changed_bytes']} B) of {result['files']} files "
        f"({result['bundle_bytes'] // 1024} KiB); watcher poll {result['poll_ms']:.2f} ms; "
        f"medians of {ROUNDS} edits and 2 relaunches; first launch {result['first_launch']:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
