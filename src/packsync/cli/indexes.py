"""``packsync indexes``: which indexes the cluster will use, where each was configured,
and whether credentials were found for it (their source, never their value)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.table import Table

from packsync.cli.console import out


def register(commands: Any) -> None:
    indexes = commands.add_parser(
        "indexes", help="show the package indexes in effect, where each came from, and "
        "whether credentials were found"
    )
    indexes.add_argument("--json", action="store_true", help="print the indexes as JSON")
    indexes.set_defaults(run=_indexes)


def _indexes(args: argparse.Namespace) -> int:
    from packsync.scan.indexes import discover

    settings = discover()
    rows = settings.describe()
    if args.json:
        print(json.dumps({"index_strategy": settings.index_strategy, "indexes": rows}, indent=2))
        return 0
    table = Table(title=f"package indexes (strategy: {settings.index_strategy})",
                  title_justify="left")
    for column in ("role", "url", "name", "configured in", "credentials", "uv settings"):
        table.add_column(column, overflow="fold")
    for row in rows:
        found = f"yes ({row['credentials']})" if row["credentials"] else "no"
        table.add_row(row["role"], row["url"], row["name"], row["origin"], found,
                      row["settings"])
    out.print(table)
    return 0
