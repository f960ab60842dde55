"""The seed example, run for real: a delayed function that calls an API over httpx and
hands the response to a local package, computed on a packsync cluster.

So that it needs no network, "the API" is a small JSON server on 127.0.0.1. After the
result, the script shows what was synced, how long each stage took, and proves on
every worker that it runs in its own environment with the client's versions; it exits
1 when any proof fails.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from typing import Any

import dask
import helpers
import httpx
import my_local_package
from rich.console import Console
from rich.pretty import Pretty
from rich.table import Table

import packsync

STAGES = ("scan", "plan", "build", "lock", "materialize", "code", "launch")
ACTIONS = ("pin", "build", "upload", "ignore")
PAYLOAD = {"values": [3, 1, 4, 1, 5, 9, 2, 6]}


class FooHandler(BaseHTTPRequestHandler):
    """Serves ``/foo`` as JSON, like the seed's ``https://my-api.io/foo``."""

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        if self.path != "/foo":
            self.send_error(404)
            return
        body = json.dumps(PAYLOAD).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep request lines out of the demo's output."""


def start_server() -> ThreadingHTTPServer:
    """A JSON server on a free loopback port, in a background thread."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), FooHandler)
    threading.Thread(target=server.serve_forever, name="foo-api", daemon=True).start()
    return server


@dask.delayed
def func(url: str) -> dict[str, Any]:
    """The seed's task: runs on a worker, needs httpx, my_local_package and helpers there."""
    data = httpx.get(url)
    return helpers.describe(my_local_package.process(data))


def worker_facts() -> dict[str, str]:
    """What a worker's own interpreter says about its environment (run via client.run)."""
    return {
        "prefix": sys.prefix,
        "httpx": version("httpx"),
        "my_local_package": version("my_local_package"),
        "helpers_dir": os.path.dirname(os.path.realpath(helpers.__file__)),  # via the live link
    }


def sync_table(plan: packsync.Plan) -> Table:
    """Decisions grouped by where each distribution was installed from."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    names: dict[str, list[str]] = defaultdict(list)
    for decision in plan.decisions:
        counts[decision.source.kind][decision.action] += 1
        if decision.source.is_local_code:
            names[decision.source.kind].append(decision.name)
    table = Table("source", *ACTIONS, "local code", title="What was synced")
    for kind in sorted(counts):
        row = [str(counts[kind][a]) for a in ACTIONS]
        table.add_row(kind, *row, ", ".join(sorted(names[kind])))
    return table


def timing_table(timings: dict[str, float]) -> Table:
    """Seconds per stage of this launch."""
    table = Table("stage", "seconds", title="Stages")
    for name in [*STAGES, *(s for s in timings if s not in STAGES)]:
        if name in timings:
            table.add_row(name, f"{timings[name]:.3f}")
    table.add_row("total", f"{sum(timings.values()):.3f}", style="bold")
    return table


def _short(text: str) -> str:
    return text if len(text) < 16 else "…" + text[-14:]


def proof_table(facts: dict[str, dict[str, str]], code_dir: str) -> tuple[Table, int]:
    """Client beside each worker: its own prefix, the same versions, helpers from the bundle.

    Returns the table and the number of failed checks (a missing worker counts as one).
    """
    httpx_version, package_version = version("httpx"), version("my_local_package")
    # label, worker fact, client's value, reference, whether the fact must equal the reference
    rows = [
        ("own sys.prefix", "prefix", sys.prefix, sys.prefix, False),
        ("httpx", "httpx", httpx_version, httpx_version, True),
        ("my_local_package", "my_local_package", package_version, package_version, True),
        ("helpers.py bundled", "helpers_dir", os.getcwd(), code_dir, True),
    ]
    workers = sorted(facts)
    ports = (f"worker :{w.rsplit(':', 1)[-1]}" for w in workers)
    table = Table("check", "client", *ports, title="Proof")
    failed = 0 if len(facts) == 2 else 1
    for label, key, mine, reference, equal in rows:
        cells = []
        for worker in workers:
            seen = facts[worker][key]
            ok = (seen == reference) == equal
            failed += not ok
            cells.append(f"[green]✓[/] {_short(seen)}" if ok else f"[red]✗ {_short(seen)}[/]")
        table.add_row(label, _short(mine), *cells)
    return table, failed


def main() -> int:
    """Run the seed example; 0 when every proof check passes."""
    console = Console()
    server = start_server()
    url = f"http://127.0.0.1:{server.server_port}/foo"
    try:
        with packsync.Cluster(n_workers=2) as cluster, cluster.get_client() as client:
            result = func(url).compute()
            facts = client.run(worker_facts)
            prepared = cluster.prepared
            timings = cluster.timings
    finally:
        server.shutdown()
        server.server_close()
    assert prepared is not None

    console.rule("Result of func(url).compute()")
    console.print(Pretty(result))
    console.print(sync_table(prepared.locked.plan))
    console.print(timing_table(timings))
    console.print(f"environment cache hit: {prepared.environment.cache_hit}")
    console.print(f"environment:       {prepared.environment.path}")
    console.print(f"client sys.prefix: {sys.prefix}")
    table, failed = proof_table(facts, os.path.realpath(str(prepared.code_dir)))
    console.print(table)
    if failed:
        console.print(f"[red]{failed} proof check(s) failed[/]")
        return 1
    console.print("[green]all proof checks passed[/]")
    return 0


if __name__ == "__main__":
    if main() != 0:
        raise SystemExit(1)
