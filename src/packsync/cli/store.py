"""``packsync store gc``: delete the artifacts nobody used for longer than the expiry."""

from __future__ import annotations

import argparse
import json
from typing import Any

from packsync.cli.console import out


def register(commands: Any) -> None:
    store = commands.add_parser("store", help="look after the artifact store")
    actions = store.add_subparsers(required=True, metavar="ACTION")
    gc = actions.add_parser(
        "gc",
        help="delete store objects unused for longer than the expiry (default 24h)",
        description="Delete the wheels and code bundles nobody used for longer than the "
        "expiry. The expiry is --expiry, PACKSYNC_STORE_EXPIRY, dask config "
        "packsync.store-expiry, or 24h. Nothing else ever deletes store objects.",
    )
    gc.add_argument("--store", help="artifact store URL or directory")
    gc.add_argument("--cache-dir", help="packsync cache directory (the default store is in it)")
    gc.add_argument("--expiry", help="keep objects used within this long: seconds, '24h', '7d'")
    gc.add_argument("--dry-run", action="store_true", help="only list what would be deleted")
    gc.add_argument("--json", action="store_true", help="print the result as JSON")
    gc.set_defaults(run=_gc)


def _gc(args: argparse.Namespace) -> int:
    from packsync.config import cache_dir, store_expiry, store_url
    from packsync.store import open_store

    store = open_store(store_url(args.store, cache_dir(args.cache_dir)))
    expiry = store_expiry(args.expiry)
    result = store.gc(expiry, dry_run=args.dry_run)
    if args.json:
        print(json.dumps({"store": store.url, "dry_run": args.dry_run,
                          "removed": list(result.removed), "removed_bytes": result.removed_bytes,
                          "kept": result.kept}))
        return 0
    verb = "would remove" if args.dry_run else "removed"
    out.print(f"{store.url}: {verb} {len(result.removed)} objects "
              f"({result.removed_bytes / 1e6:.1f} MB) unused for {expiry / 3600:g} h; "
              f"kept {result.kept}")
    return 0
