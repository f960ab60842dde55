"""A lock written for use without packsync: the ``pylock.toml`` and its local wheels beside it.

The lock refers to the wheels of local code as ``wheels/<file>`` (relative to its own
directory, as PEP 751 and uv read a relative path), so the directory it is written to
installs anywhere with plain uv (``uv pip sync pylock.toml``) once those wheels are there.
"""

from __future__ import annotations

import re
from pathlib import Path

from packsync.errors import LockError
from packsync.lock.lockfile import WHEELS_DIR, Lock
from packsync.store import Store, sha256_file

# PEP 751: ``pylock.toml`` or ``pylock.<name>.toml``, no dot in the name
_PEP751_NAME = re.compile(r"pylock(\.[^.]+)?\.toml")


def export(lock: Lock, path: Path, store: Store) -> tuple[Path, ...]:
    """Write ``lock`` to ``path`` and its local wheels to ``wheels/`` beside it; the wheels.

    A wheel already there with the right hash is kept; each one fetched is verified
    against the hash the lock records. The lock is written last, so it never refers to
    a wheel that is not there.
    """
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
    lock.write(path)
    return tuple(wheels)


def uv_installable_name(path: Path) -> bool:
    """Whether uv installs a lock under this file name (PEP 751 names only)."""
    return _PEP751_NAME.fullmatch(path.name) is not None
