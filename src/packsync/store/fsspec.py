"""A store on any fsspec filesystem (``s3://``, ``gs://``, ``memory://``...).

Its options come from fsspec's own configuration (``FSSPEC_S3_ENDPOINT_URL``...), the
SDK's (``AWS_ENDPOINT_URL``, profiles), the dask config key ``packsync.store-options``,
or ``storage_options=``; never from the URL, which is logged. fsspec is imported only
when such a store is opened.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from packsync.errors import IntegrityError, StoreError
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

USES = "last-use"  # an empty marker rewritten on each use; its mtime is the use


class FsspecStore:
    """A store on any fsspec filesystem: ``<url>/sha256/<ab>/<digest>``.

    The last use of an object is the modification time of an empty marker
    ``<url>/last-use/<ab>/<digest>`` (objects in S3 and the like cannot be touched).
    """

    def __init__(
        self, url: str, fs: Any, root: str, *, clock: Clock = time.time
    ) -> None:
        self.url = url
        self.fs = fs
        self.root = root.rstrip("/")
        self.clock = clock
        protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
        self._atomic_put = bool({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"} & set(protocols))

    def __repr__(self) -> str:
        return f"FsspecStore({self.url!r})"

    def _key(self, kind: str, sha256: str) -> str:
        check_digest(sha256)
        return f"{self.root}/{kind}/{sha256[:2]}/{sha256}"

    def _call(self, what: str, sha256: str, action: Callable[[], Any]) -> Any:
        """Run one filesystem call; foreign errors become ``StoreError`` naming the store."""
        try:
            return action()
        except (PermissionError, FileNotFoundError):
            raise
        except Exception as error:  # botocore, aiohttp, gcsfs... have no common base
            raise StoreError(
                f"could not {what} the store {self.url}: {type(error).__name__}: {error}",
                path=self.url,
                digest=sha256,
                hint="check the store URL, its options (endpoint, credentials) and the network",
            ) from error

    def has(self, sha256: str) -> bool:
        key = self._key(OBJECTS, sha256)
        self.fs.invalidate_cache(key)
        return bool(self._call("read", sha256, lambda: self.fs.exists(key)))

    def touch(self, sha256: str) -> bool:
        if not self.has(sha256):
            return False
        marker = self._key(USES, sha256)
        self._call("write to", sha256, lambda: self.fs.pipe_file(marker, b""))
        return True

    def put(self, path: Path, sha256: str) -> bool:
        if self.touch(sha256):
            return False
        if sha256_file(path) != sha256:
            raise IntegrityError(
                f"{path} does not hash to sha256:{sha256}", path=str(path), digest=sha256
            )
        key = self._key(OBJECTS, sha256)
        if self._atomic_put:
            self._call("write to", sha256, lambda: self.fs.put_file(str(path), key))
        else:
            incoming = f"{self.root}/{OBJECTS}/{sha256[:2]}/{INCOMING}{uuid.uuid4().hex}"

            def put_then_rename() -> None:
                self.fs.put_file(str(path), incoming)
                self.fs.mv(incoming, key)

            self._call("write to", sha256, put_then_rename)
        self._call("write to", sha256, lambda: self.fs.pipe_file(self._key(USES, sha256), b""))
        self.fs.invalidate_cache(key)
        return True

    def fetch(self, sha256: str, destination: Path) -> None:
        key = self._key(OBJECTS, sha256)
        try:
            verified_copy(
                lambda tmp: self._call("read", sha256, lambda: self.fs.get_file(key, tmp)),
                sha256,
                destination,
                f"{self.url.rstrip('/')}/{OBJECTS}/{sha256[:2]}/{sha256}",
            )
        except FileNotFoundError as error:
            raise missing(sha256, self.url) from error
        self.touch(sha256)

    def gc(self, expiry: float, *, dry_run: bool = False) -> GcResult:
        cutoff = self.clock() - expiry
        self.fs.invalidate_cache(self.root)
        objects = self._listing(OBJECTS)
        uses = self._listing(USES)
        removed: list[str] = []
        size = kept = 0
        doomed: list[str] = []
        for name, info in objects.items():
            used = _max(_mtime(info), _mtime(uses.get(name, {})))
            if used is None or used >= cutoff:  # an unknown time is never expired
                kept += not name.startswith(INCOMING)
                continue
            doomed += [info["name"]] + ([uses[name]["name"]] if name in uses else [])
            if not name.startswith(INCOMING):
                removed.append(name)
                size += int(info.get("size") or 0)
        doomed += [info["name"] for name, info in uses.items() if name not in objects]
        if doomed and not dry_run:
            self._call("delete from", "", lambda: self.fs.rm(doomed))
        return GcResult(removed=tuple(sorted(removed)), removed_bytes=size, kept=kept)

    def _listing(self, kind: str) -> dict[str, dict[str, Any]]:
        base = f"{self.root}/{kind}"
        try:
            found = self._call("list", "", lambda: self.fs.find(base, detail=True))
        except FileNotFoundError:
            return {}
        return {
            path.rsplit("/", 1)[-1]: info
            for path, info in found.items()
            if info.get("type", "file") == "file"
        }


def _mtime(info: Mapping[str, Any]) -> float | None:
    """Modification time of a listing entry; fsspec backends name it differently."""
    for field in ("LastModified", "mtime", "last_modified", "updated", "modified", "created"):
        value = info.get(field)
        if isinstance(value, dt.datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=dt.timezone.utc)
            return value.timestamp()
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str) and value:
            try:
                return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return None


def _max(*values: float | None) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def open_fsspec_store(
    text: str, *, storage_options: Mapping[str, Any] | None, clock: Clock = time.time
) -> FsspecStore:
    """The store at ``text``, a URL of any filesystem fsspec knows (its options merged in)."""
    import fsspec
    from fsspec.registry import known_implementations

    parts = urlsplit(text)
    if parts.scheme not in known_implementations:
        raise StoreError(
            f"store URL {text!r} uses {parts.scheme}://, which fsspec does not know",
            path=text,
            hint="give a local directory, or a URL of a filesystem fsspec supports (s3://...)",
        )
    options = {**_configured_options(), **(storage_options or {})}
    try:
        fs, root = fsspec.core.url_to_fs(text, **options)
    except ImportError as error:
        extra = "s3" if parts.scheme in ("s3", "s3a") else parts.scheme
        raise StoreError(
            f"the store {text} needs a library that is not installed: {error}",
            path=text,
            hint=f"install it, e.g. pip install 'packsync[{extra}]'"
            if extra == "s3" else f"install the fsspec implementation for {parts.scheme}://",
        ) from error
    except Exception as error:
        raise StoreError(
            f"could not open the store {text}: {type(error).__name__}: {error}", path=text
        ) from error
    return FsspecStore(text.rstrip("/"), fs, root, clock=clock)


def _configured_options() -> dict[str, Any]:
    from packsync.config import store_options

    return store_options()
