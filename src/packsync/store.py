"""Content-addressed artifact store: objects are named by their SHA-256 and checked on fetch.

An object is never visible half-written (a local file is renamed into place, an
object-store PUT is atomic), and a fetched object whose bytes do not match its name
is refused, never installed. Objects expire a while after their last use (a put of an
existing object, a fetch, or a ``touch``): ``gc`` is the only thing that deletes them.

The local directory store is the default and stays cheap (a relaunch checks it with
one ``utime``); any other fsspec URL (``s3://``, ``gs://``, ``memory://``...) gets an
``FsspecStore``. Options for those come from fsspec's own configuration
(``FSSPEC_S3_ENDPOINT_URL``...), the SDK's (``AWS_ENDPOINT_URL``, profiles), the
dask config key ``packsync.store-options``, or ``storage_options=``; never from the
URL, which is logged.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from packsync.errors import IntegrityError, StoreError

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
"""Seconds since the epoch; ``time.time`` unless a test injects another."""

OBJECTS = "sha256"
USES = "last-use"  # FsspecStore: an empty marker rewritten on each use; its mtime is the use
_INCOMING = ".incoming-"
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
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_digest(sha256: str) -> None:
    if len(sha256) != 64 or not _HEX.issuperset(sha256):
        raise StoreError(f"{sha256!r} is not a SHA-256 hex digest", digest=sha256)


def _verified_copy(
    copy: Callable[[str], object], sha256: str, destination: Path, origin: str
) -> None:
    """Copy an object via a temporary file beside ``destination``; keep it only if it
    matches its digest."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=destination.parent, prefix=_INCOMING)
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


def _missing(sha256: str, url: str) -> StoreError:
    return StoreError(
        f"object sha256:{sha256} is not in the store {url}",
        digest=sha256,
        path=url,
        hint="relaunch from the client so that it uploads its artifacts again",
    )


class LocalStore:
    """A store in a local directory: ``<root>/sha256/<ab>/<digest>``; mtime is the last use."""

    def __init__(self, root: Path, *, clock: Clock = time.time) -> None:
        self.root = Path(root)
        self.url = self.root.as_uri()
        self.clock = clock

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def _path(self, sha256: str) -> Path:
        _check_digest(sha256)
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
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=_INCOMING)
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
            raise _missing(sha256, self.url)
        try:
            _verified_copy(lambda tmp: shutil.copyfile(source, tmp), sha256, destination,
                           str(source))
        except FileNotFoundError as error:  # collected between the check and the copy
            raise _missing(sha256, self.url) from error
        self.touch(sha256)

    def gc(self, expiry: float, *, dry_run: bool = False) -> GcResult:
        cutoff = self.clock() - expiry
        removed: list[str] = []
        size = kept = 0
        for path in self._objects():
            try:
                info = path.stat()
                if info.st_mtime >= cutoff:
                    kept += not path.name.startswith(_INCOMING)
                    continue
                if not dry_run:
                    path.unlink()
            except FileNotFoundError:
                continue
            if not path.name.startswith(_INCOMING):  # abandoned uploads go silently
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
        _check_digest(sha256)
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
            incoming = f"{self.root}/{OBJECTS}/{sha256[:2]}/{_INCOMING}{uuid.uuid4().hex}"

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
            _verified_copy(
                lambda tmp: self._call("read", sha256, lambda: self.fs.get_file(key, tmp)),
                sha256,
                destination,
                f"{self.url.rstrip('/')}/{OBJECTS}/{sha256[:2]}/{sha256}",
            )
        except FileNotFoundError as error:
            raise _missing(sha256, self.url) from error
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
                kept += not name.startswith(_INCOMING)
                continue
            doomed += [info["name"]] + ([uses[name]["name"]] if name in uses else [])
            if not name.startswith(_INCOMING):
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


GC_INTERVAL = 3600.0
GC_STAMP = "store-gc.stamp"


def gc_if_due(
    store: Store,
    *,
    cache: Path,
    expiry: float,
    interval: float = GC_INTERVAL,
    clock: Clock = time.time,
) -> GcResult | None:
    """The cheap automatic pass at launch: a ``gc`` at most once per ``interval``.

    One ``stat`` of a stamp file in the cache when nothing is due. A failing pass only
    logs: it must never stop a launch.
    """
    stamp = cache / GC_STAMP
    now = clock()
    try:
        if now - stamp.stat().st_mtime < interval:
            return None
    except FileNotFoundError:
        pass
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.touch()
        os.utime(stamp, (now, now))
        result = store.gc(expiry)
    except (OSError, StoreError) as error:
        logger.warning("automatic clean-up of the store %s failed: %s", store.url, error)
        return None
    if result.removed:
        logger.info("removed %d expired objects (%d bytes) from the store %s",
                    len(result.removed), result.removed_bytes, store.url)
    return result


def open_store(
    url: str | os.PathLike[str],
    *,
    storage_options: Mapping[str, Any] | None = None,
    clock: Clock = time.time,
) -> Store:
    """The store at a local path or ``file://`` URL, or any other fsspec URL."""
    text = os.fspath(url)
    parts = urlsplit(text)
    if parts.scheme in ("", "file") or (len(parts.scheme) == 1 and os.name == "nt"):
        return LocalStore(Path(parts.path if parts.scheme == "file" else text).expanduser(),
                          clock=clock)
    if parts.password is not None or parts.username is not None:
        raise StoreError(
            f"the store URL for {parts.scheme}://{parts.hostname or ''} carries credentials, "
            "and store URLs are logged",
            path=f"{parts.scheme}://{parts.hostname or ''}{parts.path}",
            hint="pass credentials through the storage's own configuration (for S3: "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile), or storage_options",
        )
    import fsspec
    from fsspec.registry import known_implementations

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
    import dask.config

    options = dask.config.get("packsync.store-options", default=None) or {}
    return dict(options)
