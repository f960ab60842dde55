"""What every store shares: the ``Store`` protocol, object names, and verified copies.

An object is named by its SHA-256; a copy is kept only when its bytes match that name.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from packsync.errors import IntegrityError, StoreError
from packsync.hostside import layout

Clock = Callable[[], float]
"""Seconds since the epoch; ``time.time`` unless a test injects another."""

OBJECTS = layout.OBJECTS  # the layout every host reads a store directory with
INCOMING = ".incoming-"
_HEX = frozenset("0123456789abcdef")


class Store(Protocol):
    """Where wheels of local code and code bundles live between client and hosts."""

    url: str

    def has(self, sha256: str) -> bool: ...

    def touch(self, sha256: str) -> bool:
        """Record a use of the object (it expires later); False when it is not there."""
        ...

    def put(self, path: Path, sha256: str) -> bool:
        """Store the file at ``path`` under ``sha256``; False when it was already there."""
        ...

    def fetch(self, sha256: str, destination: Path) -> None:
        """Write the object to ``destination``, verified against ``sha256``."""
        ...

    def gc(self, expiry: float, *, dry_run: bool = False) -> GcResult:
        """Delete the objects unused for more than ``expiry`` seconds."""
        ...


@dataclass(frozen=True, kw_only=True, slots=True)
class GcResult:
    """What a garbage collection of a store removed and kept."""

    removed: tuple[str, ...]
    removed_bytes: int
    kept: int


def sha256_file(path: Path) -> str:
    return layout.sha256_file(str(path))


def check_digest(sha256: str) -> None:
    if len(sha256) != 64 or not _HEX.issuperset(sha256):
        raise StoreError(f"{sha256!r} is not a SHA-256 hex digest", digest=sha256)


def verified_copy(
    copy: Callable[[str], object], sha256: str, destination: Path, origin: str
) -> None:
    """Copy an object via a temporary file beside ``destination``; keep it only if it
    matches its digest."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=destination.parent, prefix=INCOMING)
    os.close(fd)
    try:
        copy(tmp)
        actual = sha256_file(Path(tmp))
        if actual != sha256:
            raise IntegrityError(
                f"store object {origin} does not match its digest (its content hashes to "
                f"sha256:{actual}); it was altered after it was stored and will not be installed",
                path=origin,
                digest=sha256,
                hint=f"delete {origin} and relaunch from the client to store it again",
            )
        os.replace(tmp, destination)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def missing(sha256: str, url: str) -> StoreError:
    return StoreError(
        f"object sha256:{sha256} is not in the store {url}",
        digest=sha256,
        path=url,
        hint="relaunch from the client so that it uploads its artifacts again",
    )
