"""Archive chunks in a host's own store: removed once no launch on the host needs them.

A launch's chunks land in the host's own store, are unpacked, may be served to the other
hosts, and are then removed. Two launches of one environment on a host share the chunk
files (they are named by their content), so one launch must not remove what the other is
still receiving, unpacking or serving:

- every process that uses chunks (a ``prepare`` that receives and unpacks them, a
  ``serve``) holds a shared ``flock`` on ``<store>/chunks.use`` meanwhile (``using``);
- chunks a host keeps to serve later in its launch are listed in a ``<store>/chunks.kept-*``
  file of that launch until it serves them or is told to forget them; a list older than
  ``KEPT_AGE`` (its launch crashed) no longer counts;
- only a process that holds ``chunks.use`` exclusively removes chunks: its own, and those
  that processes before it could not remove and listed in ``<store>/chunks.unused``.

Standard library only: this runs on hosts.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import os
import time
from collections.abc import Iterable, Iterator

from packsync.hostside import layout
from packsync.hostside.lease import open_locked

USE = "chunks.use"
UNUSED = "chunks.unused"
KEPT_PREFIX = "chunks.kept-"
KEPT_AGE = 3600.0


@contextlib.contextmanager
def using(store: str) -> Iterator[None]:
    """Chunks of ``store`` in use by this process: none is removed meanwhile."""
    os.makedirs(store, mode=0o700, exist_ok=True)
    held = open_locked(os.path.join(store, USE), fcntl.LOCK_SH)
    assert held is not None
    try:
        yield
    finally:
        os.close(held)


def keep(store: str, launch: str, chunks: Iterable[str]) -> None:
    """Keep ``chunks`` for ``launch`` (a secret of that launch), which serves them later."""
    with open(_kept_path(store, launch), "w", encoding="utf-8") as handle:
        handle.writelines(f"{sha256}\n" for sha256 in chunks)


def release(store: str, chunks: Iterable[str], launch: str = "") -> None:
    """This process (and ``launch``, if given) no longer needs ``chunks``: remove them, with
    those left by earlier processes, unless another process still uses or keeps them.

    Call it outside ``using``."""
    if not os.path.isdir(store):  # nothing ever arrived here
        return
    if launch:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(_kept_path(store, launch))
    mine = list(chunks)
    held = open_locked(os.path.join(store, USE), fcntl.LOCK_EX | fcntl.LOCK_NB)
    if held is None:  # another launch uses chunks here: the last one out removes these
        with open(os.path.join(store, UNUSED), "a", encoding="utf-8") as handle:
            handle.writelines(f"{sha256}\n" for sha256 in mine)
        return
    try:
        unused = os.path.join(store, UNUSED)
        listed = _read(unused)
        kept = _kept(store)
        for sha256 in {*mine, *listed} - kept:
            if layout.is_digest(sha256):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(layout.blob_path(store, sha256))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(unused)
    finally:
        os.close(held)


def _kept(store: str) -> set[str]:
    """The chunks that launches keep to serve, but for those of launches that crashed."""
    found: set[str] = set()
    now = time.time()
    for path in glob.glob(os.path.join(glob.escape(store), KEPT_PREFIX + "*")):
        try:
            fresh = now - os.stat(path).st_mtime < KEPT_AGE
        except FileNotFoundError:
            continue
        if fresh:
            found |= _read(path)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    return found


def _read(path: str) -> set[str]:
    try:
        with open(path, encoding="utf-8") as handle:
            return {line.strip() for line in handle if line.strip()}
    except FileNotFoundError:
        return set()


def _kept_path(store: str, launch: str) -> str:
    """The list of ``launch``'s kept chunks, named by a hash: the launch's token is a secret
    (it authenticates peers to the host's chunk server) and names no file."""
    return os.path.join(store, KEPT_PREFIX + hashlib.sha256(launch.encode()).hexdigest()[:32])
