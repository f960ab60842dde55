"""A lock written for use without packsync: the ``pylock.toml`` and its local wheels beside it.

The lock refers to the wheels of local code as ``wheels/<file>`` (relative to its own
directory, as PEP 751 and uv read a relative path), so the directory it is written to
installs anywhere with plain uv (``uv pip sync pylock.toml``) once those wheels are there.

A lock resolved from an index whose URL carries a token holds placeholders in its place
(``lock.tokens``): plain uv cannot install it, ``packsync materialize`` can. Asked for
(``live_tokens``), the lock is written with the live URLs instead, readable by its owner
only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from packsync.errors import LockError
from packsync.hostside.placeholders import placeholder
from packsync.lock.lockfile import WHEELS_DIR, Lock
from packsync.lock.tokens import unmask
from packsync.store import Store, sha256_file

# PEP 751: ``pylock.toml`` or ``pylock.<name>.toml``, no dot in the name
_PEP751_NAME = re.compile(r"pylock(\.[^.]+)?\.toml")


def export(lock: Lock, path: Path, store: Store,
           live_tokens: Mapping[str, str] | None = None) -> tuple[Path, ...]:
    """Write ``lock`` to ``path`` and its local wheels to ``wheels/`` beside it; the wheels.

    A wheel already there with the right hash is kept; each one fetched is verified
    against the hash the lock records. The lock is written last, so it never refers to
    a wheel that is not there. With ``live_tokens`` (label -> token) its placeholders are
    filled in, in a file of mode 0600.
    """
    live = unmask(lock.text, live_tokens, str(path)) if live_tokens is not None else None
    wheels = []
    for wheel in lock.local_wheels:
        target = path.parent / WHEELS_DIR / wheel.filename
        try:
            if not (target.is_file() and sha256_file(target) == wheel.sha256):
                store.fetch(wheel.sha256, target)
        except OSError as error:
            raise LockError(
                f"cannot write the wheel {wheel.filename} beside the lock in {target.parent}: "
                f"{error.strerror or error}",
                path=str(target),
                hint="choose a writable location for the lock",
            ) from error
        wheels.append(target)
    if live is None or live == lock.text:
        lock.write(path)
    else:
        _write_private(path, live)
    return tuple(wheels)


def _write_private(path: Path, text: str) -> None:
    """``text`` at ``path``, owner-only from its first byte (it holds index tokens)."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.unlink(missing_ok=True)
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        partial.replace(path)
    except OSError as error:
        raise LockError(f"cannot write the lock to {path}: {error.strerror or error}",
                        path=str(path), hint="choose a writable location for the lock"
                        ) from error


def tokens_note(lock: Lock, path: Path, *, live: bool) -> str:
    """What to say about the index tokens of ``lock`` written to ``path`` ("" if none)."""
    held = ", ".join(placeholder(label) for label in lock.token_labels)
    if not held:
        return ""
    if live:
        return (f"warning: {path} holds the live URLs of the index tokens packsync's lock "
                f"writes as {held}: it is readable by you only, keep it so")
    return (f"warning: {path} holds {held} in place of index tokens, so plain uv cannot "
            f"install it; `packsync materialize {path}` can where the indexes are "
            "configured, or write it with `packsync lock --live-urls` (the file then holds "
            "the tokens)")


def uv_installable_name(path: Path) -> bool:
    """Whether uv installs a lock under this file name (PEP 751 names only)."""
    return _PEP751_NAME.fullmatch(path.name) is not None
