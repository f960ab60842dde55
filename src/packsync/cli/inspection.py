"""``packsync scan`` and ``packsync plan``: what this environment holds, what workers get."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.table import Table

from packsync.cli.console import err, out
from packsync.cli.reporter import RichReporter
from packsync.errors import PacksyncError
from packsync.model import (
    FAIL_ON_LEVELS,
    SNAPSHOT_FORMAT,
    Plan,
    PlanOptions,
    Problem,
    Snapshot,
    lock_label,
)
from packsync.plan import options
from packsync.serial import FormatError
from packsync.sources import SOURCE_KINDS


def register(commands: Any) -> None:
    scan = commands.add_parser("scan", help="show what this environment holds, by install kind")
    scan.add_argument("--json", action="store_true", help="print the snapshot as JSON")
    scan.set_defaults(run=_scan)

    plan = commands.add_parser("plan", help="show what the cluster would get, and why")
    planning_options(plan)
    plan.add_argument("--json", action="store_true", help="print the decisions as JSON")
    plan.add_argument("--no-resolve", action="store_true",
                      help="do not ask the indexes what the workers would get")
    plan.add_argument("--cache-dir", help="packsync cache directory")
    plan.set_defaults(run=_plan)


def planning_options(parser: argparse.ArgumentParser) -> None:
    """The options of a plan, and what it is made for and from."""
    plan_choices(parser)
    parser.add_argument("--target", metavar="PLATFORM",
                        help="the workers' platform: linux-x86_64 or linux-aarch64 "
                             "(default: like this machine, or linux-x86_64 from elsewhere)")
    parser.add_argument("--snapshot", help="plan from a saved `packsync scan --json`")


def plan_choices(parser: argparse.ArgumentParser) -> None:
    """The options ``packsync.plan.options.plan_options`` takes."""
    parser.add_argument("--ignore", action="append", metavar="NAME",
                        help="a distribution not to sync (repeatable)")
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="sync just this (repeatable), with the Dask packages and what "
                             "they all require")
    parser.add_argument("--strict", action="store_true", default=None,
                        help="exact versions even for another platform; conflicts are errors")
    parser.add_argument("--relax-same-platform", action="store_true", default=None,
                        help="on this machine's own platform, let a version the indexes lack "
                             "become the nearest of its major.minor (default: stop)")
    parser.add_argument("--fail-on", choices=sorted(FAIL_ON_LEVELS),
                        help="which problems stop: critical (default), warning or any")
    parser.add_argument("--accelerator", metavar="NAME",
                        help="the workers' accelerator: cpu, cu124, rocm6.2...; torch and its "
                             "family get that variant (default: the variant installed here)")
    parser.add_argument("--lock-environment", metavar="NAME",
                        help="the environment of the project's pixi.lock the workers get "
                             "(default: the one this machine runs)")


def plan_options(args: argparse.Namespace) -> PlanOptions:
    return options.plan_options(
        ignore=args.ignore, only=args.only, strict=args.strict, fail_on=args.fail_on,
        relax_same_platform=args.relax_same_platform, accelerator=args.accelerator,
        lock_environment=args.lock_environment,
    )


def target(args: argparse.Namespace) -> str | None:
    chosen: str | None = getattr(args, "target", None)
    return chosen


def load_snapshot(args: argparse.Namespace) -> Snapshot | None:
    if not getattr(args, "snapshot", None):
        return None
    path = Path(args.snapshot)
    try:
        return Snapshot.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FormatError as error:
        raise FormatError(
            f"{path} is not a snapshot of format {SNAPSHOT_FORMAT}, the format this packsync "
            f"reads: {error.message}",
            path=str(path),
            hint="write it again with this version's `packsync scan --json > snapshot.json`",
        ) from error
    except (OSError, ValueError) as error:
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
    for note in snapshot.notes:
        out.print(f"[cyan]note[/]: {note}", soft_wrap=True)
    return 0


def _plan(args: argparse.Namespace) -> int:
    from packsync.pipeline import resolve_for_target
    from packsync.plan.rules import enforce, plan
    from packsync.scan import scan

    options = plan_options(args)
    if not args.no_resolve:
        from packsync.config import cache_dir
        from packsync.lock.lockfile import check_directory

        check_directory(cache_dir(args.cache_dir), "packsync cache directory")
    snapshot = load_snapshot(args) or scan()
    decided = plan(snapshot, target(args), options)
    if not args.no_resolve:
        decided = resolve_for_target(
            decided, cache=args.cache_dir, reporter=RichReporter(err), snapshot=snapshot
        )
    else:
        decided = _unresolved(decided, args.cache_dir)
    if args.json:
        keys = ("name", "local_version", "specifier", "cluster_version", "action", "reason")
        rows = [{k: d.to_dict()[k] for k in keys} for d in decided.decisions]
        if decided.conda is not None:
            rows += [{"conda": True, **c.to_dict()} for c in decided.conda.decisions]
        print(json.dumps(rows, indent=2))
    else:
        _print_plan(decided)
    enforce(decided.problems, options.fail_on)
    return 0


def _unresolved(decided: Plan, cache: str | None) -> Plan:
    """The plan without asking the indexes: as resolved before when its lock is in the
    cache (the same-platform refusal included), else with a notice that the check of exact
    versions against the indexes was skipped."""
    from packsync.pipeline import resolved_before_for_target
    from packsync.plan.resolved import searched

    known = resolved_before_for_target(decided, cache=cache)
    if known is not None:
        return known
    exact = sorted(d.name for d in decided.decisions if d.if_relaxed == "critical")
    if not exact:
        return decided
    skipped = Problem(
        severity="notice",
        message=f"not checked (--no-resolve): whether the indexes searched "
                f"({searched(decided.indexes)}) have the exact versions of the "
                f"{len(exact)} packages this same-platform plan pins ({_listed(exact)}); "
                "a version none of them has is a critical problem that refuses the launch; "
                "run `packsync plan` without --no-resolve to check them",
        packages=tuple(exact),
        hint="run `packsync plan` without --no-resolve to check them, or accept the nearest "
             "versions with --relax-same-platform",
    )
    return replace(decided, problems=(*decided.problems, skipped))


def _listed(names: list[str], shown: int = 5) -> str:
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


def _print_conda(decided: Plan) -> None:
    assert decided.conda is not None
    table = Table(title=f"conda packages for {decided.conda.subdir}", title_justify="left")
    for column in ("package", "local", "cluster", "decision", "reason"):
        table.add_column(column)
    for d in decided.conda.decisions:
        local = f"{d.local_version} {d.build}".strip()
        cluster = d.cluster_version or d.spec
        table.add_row(d.name, local, cluster if d.action != "ignore" else "-", d.action, d.reason)
    out.print(table)
    if decided.conda.constraints:
        files = ", ".join(c.split("[", 1)[0] for c in decided.conda.constraints)
        out.print(f"held to the project lock, if the solver needs them: {files}", soft_wrap=True)


_SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "notice": "cyan"}


def _print_plan(decided: Plan) -> None:
    target = decided.target
    table = Table(title=f"plan for {target.platform}, Python {target.python}",
                  title_justify="left")
    for column in ("package", "local", "cluster", "decision", "reason"):
        table.add_column(column)
    for d in decided.decisions:
        cluster = d.cluster_version or d.specifier
        if d.cluster_version and d.cluster_version != d.local_version:
            cluster = f"[yellow]{d.cluster_version}[/] ({d.specifier})"
        table.add_row(d.name, d.local_version, cluster if d.action != "ignore" else "-",
                      d.action, d.reason)
    out.print(table)
    if decided.conda is not None:
        _print_conda(decided)
    if decided.accelerator:
        out.print(f"accelerator: {decided.accelerator}, variants from "
                  f"{decided.accelerator_index}", soft_wrap=True)
    if decided.project_lock:
        used = lock_label(decided.project_lock, decided.project_lock_environment)
        out.print(f"versions for {target.platform} from the project lock {used}",
                  soft_wrap=True)
    idx = decided.indexes
    out.print(f"index: {idx.index_url} ({idx.origins.get(idx.index_url, 'default')})")
    for url in idx.extra_index_urls:
        out.print(f"extra index: {url} ({idx.origins.get(url, '?')})")
    for url in idx.find_links:
        out.print(f"find-links: {url} ({idx.origins.get(url, '?')})")
    for problem in decided.problems:
        style = _SEVERITY_STYLE[problem.severity]
        out.print(f"[{style}]{problem.severity}[/]: {problem.message}", soft_wrap=True)
