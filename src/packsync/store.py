"""Content-addressed artifact store: objects are named by their SHA-256 and checked on fetch.

An object is written under a temporary name and renamed into place, so a reader
never sees half an object; a fetched object whose bytes do not match its name is
refused, never installed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from packsync.errors import IntegrityError, StoreError


class Store(Protocol):
    """Where wheels of local code and code bundles live between client and hosts."""

    url: str

    def has(self, sha256: str) -> bool: ...

    def put(self, path: Path, sha256: str) -> bool:
        """Store the file at ``path`` under ``sha256``; False when it was already there."""
        ...

    def fetch(self, sha256: str, destination: Path) -> None:
        """Write the object to ``destination``, verified against ``sha256``."""
        ...


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class LocalStore:
    """A store in a local directory: ``<root>/sha256/<ab>/<digest>``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.url = self.root.as_uri()

    def _path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise StoreError(f"{sha256!r} is not a SHA-256 hex digest", digest=sha256)
        return self.root / "sha256" / sha256[:2] / sha256

    def has(self, sha256: str) -> bool:
        return self._path(sha256).exists()

    def put(self, path: Path, sha256: str) -> bool:
        target = self._path(sha256)
        if target.exists():
            os.utime(target)
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        os.close(fd)
        try:
            shutil.copyfile(path, tmp)
            if sha256_file(Path(tmp)) != sha256:
                raise IntegrityError(
                    f"{path} changed while it was being stored", path=str(path), digest=sha256
                )
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return True

    def fetch(self, sha256: str, destination: Path) -> None:
        source = self._path(sha256)
        if not source.exists():
            raise StoreError(
                f"object sha256:{sha256} is not in the store {self.url}",
                digest=sha256,
                hint="relaunch from the client so that it uploads its artifacts again",
            )
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)
        actual = sha256_file(destination)
        if actual != sha256:
            destination.unlink()
            raise IntegrityError(
                f"store object {source} does not match its digest (sha256:{actual}); "
                "it was altered after it was stored and will not be installed",
                path=str(source),
                digest=sha256,
                hint=f"delete {source} and relaunch from the client to store it again",
            )
        os.utime(source)


def open_store(url: str | os.PathLike[str]) -> Store:
    """A store for a URL or path; local directories for now."""
    text = os.fspath(url)
    parts = urlsplit(text)
    if parts.scheme in ("", "file"):
        return LocalStore(Path(parts.path if parts.scheme else text).expanduser())
    raise StoreError(
        f"store URL {text!r} uses {parts.scheme}://, which this version cannot use",
        path=text,
        hint="give a local directory as the store",
    )
