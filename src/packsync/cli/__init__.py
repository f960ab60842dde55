"""``packsync …``: the only place that prints or picks exit codes.

Each module of this package owns a group of subcommands and adds them with its
``register(commands)``; this one parses, runs and turns errors into exit codes.
"""

from __future__ import annotations

import argparse
import logging
import sys

from rich.text import Text

from packsync.cli import cache, environment, indexes, inspection, store, worker
from packsync.cli.console import err
from packsync.errors import PacksyncError

COMMAND_GROUPS = (inspection, environment, cache, store, indexes, worker)


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
    parser = argparse.ArgumentParser(
        prog="packsync",
        description="Replicate this Python environment onto every machine of a Dask cluster.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(commands)
    return parser


if __name__ == "__main__":
    sys.exit(main())
