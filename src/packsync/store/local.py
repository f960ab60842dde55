"""A store in a local (or shared, mounted) directory: the default, and cheap to check.

A relaunch checks an object with one ``utime``, which is also how its use is recorded.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from packsync.errors import IntegrityError
from packsync.store.objects import (
    INCOMING,
    OBJECTS,
    Clock,
    GcResult,
    check_digest,
    missing,
    sha256_file,
    verified_copy,
)


class LocalStore:
    """A store in a local directory: ``<root>/sha256/<ab>/<digest>``; mtime is the last use."""

    def __init__(self, root: Path, *, clock: Clock = time.time) -> None:
        self.root = Path(root).absolute()  # a relative directory (--store ./store) too
        self.url = self.root.as_uri()
        self.clock = clock

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def _path(self, sha256: str) -> Path:
        check_digest(sha256)
        return self.root / OBJECTS / sha256[:2] / sha256

    def _used(self, path: Path) -> None:
        now = self.clock()
        os.utime(path, (now, now))

    def has(self, sha256: str) -> bool:
        return self._path(sha256).exists()

    def touch(self, sha256: str) -> bool:
        try:
            self._used(self._path(sha256))
        except FileNotFoundError:
            return False
        return True

    def put(self, path: Path, sha256: str) -> bool:
        target = self._path(sha256)
        if self.touch(sha256):
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=INCOMING)
        os.close(fd)
        try:
            shutil.copyfile(path, tmp)
            if sha256_file(Path(tmp)) != sha256:
                raise IntegrityError(
                    f"{path} changed while it was being stored", path=str(path), digest=sha256
                )
            self._used(Path(tmp))
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return True

    def fetch(self, sha256: str, destination: Path) -> None:
        source = self._path(sha256)
        if not source.exists():
            raise missing(sha256, self.url)
        try:
            verified_copy(lambda tmp: shutil.copyfile(source, tmp), sha256, destination,
                           str(source))
        except FileNotFoundError as error:  # collected between the check and the copy
            raise missing(sha256, self.url) from error
        self.touch(sha256)

    def gc(self, expiry: float, *, dry_run: bool = False) -> GcResult:
        cutoff = self.clock() - expiry
        removed: list[str] = []
        size = kept = 0
        for path in self._objects():
            try:
                info = path.stat()
                if info.st_mtime >= cutoff:
                    kept += not path.name.startswith(INCOMING)
                    continue
                if not dry_run:
                    path.unlink()
            except FileNotFoundError:
                continue
            if not path.name.startswith(INCOMING):  # abandoned uploads go silently
                removed.append(path.name)
                size += info.st_size
        return GcResult(removed=tuple(sorted(removed)), removed_bytes=size, kept=kept)

    def _objects(self) -> Iterator[Path]:
        try:
            prefixes = list(os.scandir(self.root / OBJECTS))
        except FileNotFoundError:
            return
        for prefix in prefixes:
            if prefix.is_dir(follow_symlinks=False):
                yield from (Path(e.path) for e in os.scandir(prefix.path) if e.is_file())
