"""``packsync cache list`` and ``packsync cache gc``: the environments of this machine's cache."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from rich.table import Table

from packsync.cli.console import out


def register(commands: Any) -> None:
    cache = commands.add_parser("cache", help="list or collect the cached environments")
    actions = cache.add_subparsers(required=True, metavar="ACTION")
    listing = actions.add_parser(
        "list", help="the cached environments: size, last use, in use, digest, packages")
    listing.add_argument("--cache-dir", help="packsync cache directory")
    listing.add_argument("--json", action="store_true", help="print the list as JSON")
    listing.set_defaults(run=_list)
    gc = actions.add_parser(
        "gc",
        help="remove environments unused for longer than the expiry (default 24h)",
        description="Remove the environments nobody used for longer than the expiry, then, "
        "with a size cap, the least recently used until the rest fit, and what interrupted "
        "builds left. An environment in use (a cluster runs from it) is never removed. The "
        "expiry is --expiry, PACKSYNC_CACHE_EXPIRY, dask config packsync.cache-expiry, or "
        "24h; the cap --max-size, PACKSYNC_CACHE_MAX_SIZE or packsync.cache-max-size.",
    )
    gc.add_argument("--cache-dir", help="packsync cache directory")
    gc.add_argument("--expiry", help="keep environments used within this long: '24h', '7d'")
    gc.add_argument("--max-size", help="the most the environments may take: '20GB'")
    gc.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    gc.add_argument("--json", action="store_true", help="print the result as JSON")
    gc.set_defaults(run=_gc)


def _list(args: argparse.Namespace) -> int:
    from packsync.config import cache_dir
    from packsync.hostside import lifecycle

    root = cache_dir(args.cache_dir)
    infos = lifecycle.environments(str(root))
    if args.json:
        print(json.dumps({"cache": str(root), "environments": infos}))
        return 0
    table = Table(title=f"environments in {root}/envs ({len(infos)}, "
                  f"{sum(i['size'] for i in infos) / 1e6:.1f} MB)", title_justify="left")
    for column in ("environment", "size", "last use", "in use", "lock digest", "holds"):
        table.add_column(column, overflow="fold")
    now = time.time()
    for info in infos:
        packages = info["packages"]
        shown = ", ".join(packages[:4]) + (f" … ({len(packages)})" if len(packages) > 4 else "")
        table.add_row(
            info["env_id"][:12], f"{info['size'] / 1e6:.1f} MB", _ago(now - info["last_use"]),
            "[bold green]yes[/]" if info["in_use"] else "no",
            info["digest"][:16] if info["ready"] else "[yellow]unfinished[/]", shown or "-",
        )
    out.print(table)
    return 0


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.1f} days ago"


def _gc(args: argparse.Namespace) -> int:
    from packsync.config import cache_dir, cache_expiry, cache_max_size
    from packsync.hostside import lifecycle

    root = cache_dir(args.cache_dir)
    expiry = cache_expiry(args.expiry)
    result = lifecycle.collect(str(root), expiry=expiry, max_size=cache_max_size(args.max_size),
                               dry_run=args.dry_run)
    if args.json:
        print(json.dumps({"cache": str(root), **result}))
        return 0
    verb = "would remove" if args.dry_run else "removed"
    for removal in result["removed"]:
        out.print(f"  {verb} {removal['env_id'][:12]}  {removal['size'] / 1e6:8.1f} MB  "
                  f"({removal['reason']})")
    out.print(f"{root}: {verb} {len(result['removed'])} environments "
              f"({result['freed'] / 1e6:.1f} MB) unused for {expiry / 3600:g} h or over the "
              f"size cap; kept {result['kept']}")
    return 0
