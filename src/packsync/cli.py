"""``packsync …``: the only place that prints or picks exit codes."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from packsync.errors import PacksyncError
from packsync.model import SOURCE_KINDS, Plan, Snapshot, Target

out = Console()
err = Console(stderr=True)


class RichReporter:
    """Shows each stage with a spinner while it runs and a line with its time when done."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._status: Any = None

    def stage_started(self, stage: str, detail: str) -> None:
        self._status = self.console.status(f"[bold]{stage}[/] {detail}")
        self._status.start()

    def stage_finished(self, stage: str, seconds: float, detail: str) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
        self.console.print(f"[green]✓[/] [bold]{stage:<12}[/] {seconds:7.3f} s  {detail}")

    def step(self, stage: str, message: str) -> None:
        if self._status is not None:
            self._status.update(f"[bold]{stage}[/] {message}")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    try:
        result: int = args.run(args)
        return result
    except PacksyncError as error:
        err.print(Text.assemble((f"error ({error.stage}): ", "bold red"), str(error)),
                  soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="packsync", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    scan = commands.add_parser("scan", help="show what this environment holds, by install kind")
    scan.add_argument("--json", action="store_true", help="print the snapshot as JSON")
    scan.set_defaults(run=_scan)

    plan = commands.add_parser("plan", help="show what the cluster would get, and why")
    _planning_options(plan)
    plan.add_argument("--json", action="store_true", help="print the decisions as JSON")
    plan.set_defaults(run=_plan)

    lock = commands.add_parser("lock", help="build local code and write the PEP 751 lock")
    _planning_options(lock)
    lock.add_argument("-o", "--output", default="pylock.toml", help="lock file to write")
    lock.add_argument("--store", help="artifact store URL or directory")
    lock.add_argument("--cache-dir", help="packsync cache directory")
    lock.set_defaults(run=_lock)

    mat = commands.add_parser("materialize", help="build (or find) the environment of a lock")
    mat.add_argument("lock", help="a pylock.toml written by `packsync lock`")
    mat.add_argument("--store", help="artifact store URL or directory")
    mat.add_argument("--cache-dir", help="packsync cache directory")
    mat.add_argument("--python", help="interpreter to create the environment from")
    mat.set_defaults(run=_materialize)
    return parser


def _planning_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ignore", action="append", default=[], metavar="NAME",
                        help="a distribution not to sync (repeatable)")
    parser.add_argument("--snapshot", help="plan from a saved `packsync scan --json`")


def _load_snapshot(args: argparse.Namespace) -> Snapshot | None:
    if not getattr(args, "snapshot", None):
        return None
    path = Path(args.snapshot)
    try:
        return Snapshot.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise PacksyncError(
            f"{path} is not a snapshot written by `packsync scan --json`: {error}",
            path=str(path),
            hint="write one with `packsync scan --json > snapshot.json`",
        ) from error


def _scan(args: argparse.Namespace) -> int:
    from packsync.scan import scan

    snapshot = scan()
    if args.json:
        print(json.dumps(snapshot.to_dict(), indent=2))
        return 0
    interp = snapshot.interpreter
    out.print(f"[bold]{interp.implementation} {interp.version}[/] on {interp.platform} "
              f"({snapshot.prefix})")
    for kind in SOURCE_KINDS:
        dists = [d for d in snapshot.dists if d.source.kind == kind]
        if not dists:
            continue
        table = Table(title=f"{kind} ({len(dists)})", title_justify="left")
        table.add_column("name")
        table.add_column("version")
        table.add_column("installer")
        table.add_column("from")
        table.add_column("problems")
        for dist in dists:
            origin = getattr(dist.source, "path", "") or getattr(dist.source, "url", "")
            table.add_row(dist.name, dist.version, dist.installer, origin, "; ".join(dist.problems))
        out.print(table)
    if snapshot.code_paths:
        out.print("working-directory code from: " + ", ".join(snapshot.code_paths))
    return 0


def _plan(args: argparse.Namespace) -> int:
    from packsync.plan import plan
    from packsync.scan import scan

    snapshot = _load_snapshot(args) or scan()
    decided = plan(snapshot, None, _options(args))
    if args.json:
        rows = [
            {k: d.to_dict()[k] for k in ("name", "local_version", "specifier", "action", "reason")}
            for d in decided.decisions
        ]
        print(json.dumps(rows, indent=2))
        return 0
    _print_plan(decided)
    return 0


def _options(args: argparse.Namespace) -> Any:
    from packsync.model import PlanOptions

    return PlanOptions.create(ignore=args.ignore)


def _print_plan(decided: Plan) -> None:
    target: Target = decided.target
    table = Table(title=f"plan for {target.platform}, Python {target.python}",
                  title_justify="left")
    for column in ("package", "local", "cluster", "decision", "reason"):
        table.add_column(column)
    for d in decided.decisions:
        table.add_row(d.name, d.local_version, d.specifier, d.action, d.reason)
    out.print(table)
    idx = decided.indexes
    out.print(f"index: {idx.index_url} ({idx.origins.get(idx.index_url, 'default')})")
    for url in idx.extra_index_urls:
        out.print(f"extra index: {url} ({idx.origins.get(url, '?')})")
    for url in idx.find_links:
        out.print(f"find-links: {url} ({idx.origins.get(url, '?')})")


def _lock(args: argparse.Namespace) -> int:
    from packsync.pipeline import lock_environment

    locked = lock_environment(
        ignore=args.ignore,
        snapshot=_load_snapshot(args),
        cache=args.cache_dir,
        store=args.store,
        reporter=RichReporter(err),
    )
    output = Path(args.output)
    locked.lock.write(output)
    err.print(f"wrote {output}: {locked.lock.package_count} packages, "
              f"environment sha256:{locked.lock.digest[:16]}…")
    return 0


def _materialize(args: argparse.Namespace) -> int:
    from packsync.config import cache_dir, store_url
    from packsync.lock import Lock
    from packsync.materialize import materialize
    from packsync.scan.indexes import discover
    from packsync.store import open_store

    path = Path(args.lock)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PacksyncError(f"cannot read the lock {path}: {error}", path=str(path)) from error
    lock = Lock.from_text(text, str(path))
    root = cache_dir(args.cache_dir)
    env = materialize(
        lock,
        cache=root,
        store=open_store(store_url(args.store, root)),
        python=args.python,
        uv_env=discover().uv_environment(),
        reporter=RichReporter(err),
    )
    print(env.python)
    return 0


if __name__ == "__main__":
    sys.exit(main())
