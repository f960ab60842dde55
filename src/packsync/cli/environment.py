"""``packsync lock`` and ``packsync materialize``: the environment a cluster runs in."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from packsync.cli.console import err
from packsync.cli.inspection import load_snapshot, plan_options, planning_options, target
from packsync.cli.reporter import RichReporter
from packsync.errors import PacksyncError


def register(commands: Any) -> None:
    lock = commands.add_parser("lock", help="build local code and write the PEP 751 lock")
    planning_options(lock)
    lock.add_argument("-o", "--output", default="pylock.toml",
                      help="lock file to write, or a directory to write pylock.toml in "
                           "(created if need be); the wheels of local code go to wheels/ "
                           "beside it, so plain uv installs it")
    lock.add_argument("--live-urls", action="store_true",
                      help="write the tokens of index URLs into the lock (mode 0600) in place "
                           "of their placeholders, so that plain uv installs it")
    lock.add_argument("--store", help="artifact store URL or directory")
    lock.add_argument("--cache-dir", help="packsync cache directory")
    lock.add_argument("--store-expiry", metavar="DURATION",
                      help="collect store objects unused for this long (default 24h)")
    lock.set_defaults(run=_lock)

    mat = commands.add_parser("materialize", help="build (or find) the environment of a lock")
    mat.add_argument("lock", help="a pylock.toml written by `packsync lock`")
    mat.add_argument("--store", help="artifact store URL or directory")
    mat.add_argument("--cache-dir", help="packsync cache directory")
    mat.add_argument("--python", help="interpreter to create the environment from")
    mat.set_defaults(run=_materialize)


def _lock(args: argparse.Namespace) -> int:
    from packsync.config import cache_dir, store_url
    from packsync.lock.export import export, tokens_note, uv_installable_name
    from packsync.lock.lockfile import check_directory, check_writable
    from packsync.pipeline import lock_environment

    output = Path(args.output)
    if args.output.endswith(("/", os.sep)) or output.is_dir():
        output = output / "pylock.toml"  # a directory: the lock goes in it
    check_writable(output)  # before building and resolving, not after
    check_directory(cache_dir(args.cache_dir), "packsync cache directory")
    store = store_url(args.store, cache_dir(args.cache_dir))
    if "://" not in store:
        check_directory(Path(store), "artifact store")
    locked = lock_environment(
        options=plan_options(args),
        target=target(args),
        snapshot=load_snapshot(args),
        cache=args.cache_dir,
        store=args.store,
        expiry=args.store_expiry,
        reporter=RichReporter(err),
    )
    tokens = locked.settings.lock_tokens() if args.live_urls else None
    wheels = export(locked.lock, output, locked.store, tokens)
    beside = f", {len(wheels)} local wheel(s) in {output.parent / 'wheels'}" if wheels else ""
    err.print(f"wrote {output}: {locked.lock.package_count} packages{beside}, "
              f"environment sha256:{locked.lock.digest[:16]}…", soft_wrap=True)
    masked = tokens_note(locked.lock, output, live=args.live_urls)
    if masked:
        err.print(masked, soft_wrap=True)
    if locked.lock.conda is not None:
        err.print("note: its conda packages ([tool.packsync.conda]) install with "
                  f"`packsync materialize {output}`; uv alone installs only the rest",
                  soft_wrap=True)
    elif masked and not args.live_urls:
        pass  # plain uv cannot install it: the warning said what can
    elif uv_installable_name(output):
        err.print(f"without packsync: uv pip sync {output}", soft_wrap=True)
    else:
        err.print(f"note: uv installs a lock only named pylock.toml or pylock.<name>.toml, "
                  f"not {output.name}", soft_wrap=True)
    return 0


def _materialize(args: argparse.Namespace) -> int:
    from packsync.config import cache_dir, store_url
    from packsync.lock.lockfile import Lock
    from packsync.lock.tokens import mask_text
    from packsync.materialize.environments import materialize
    from packsync.pipeline import conda_channels
    from packsync.scan import scan
    from packsync.scan.indexes import discover
    from packsync.store import open_store

    path = Path(args.lock)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PacksyncError(f"cannot read the lock {path}: {error}", path=str(path)) from error
    settings = discover()
    lock = Lock.from_text(mask_text(text, settings.lock_tokens()), str(path))  # --live-urls
    root = cache_dir(args.cache_dir)
    channels = conda_channels(scan()) if lock.conda is not None else {}
    env = materialize(
        lock,
        cache=root,
        store=open_store(store_url(args.store, root)),
        python=args.python,
        uv_env=settings.uv_environment(),
        reporter=RichReporter(err),
        conda_channels=channels,  # live channel URLs from this prefix, when it is conda's
    )
    print(env.python)
    return 0
