"""Bytes that reach a host: each kept only if it has the SHA-256 it was announced with.

Objects arrive on the SSH channel's stdin, from a store directory every host mounts,
from an object store through a presigned URL, or from another host of the same launch
(``peers``). Whatever the route, an object is written beside its destination and
renamed into place only once its hash matched: a torn or altered transfer leaves
nothing behind that a later run would take.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
import threading
import urllib.error
import urllib.request
from typing import IO

from packsync.hostside.protocol import HostError

TIMEOUT = 60.0  # seconds without a byte before a download is given up


def receive(stream: IO[bytes], size: int | None, sha256: str, destination: str,
            mode: int = 0o600, origin: str = "the client") -> int:
    """Copy ``size`` bytes (all, if None) from ``stream`` to ``destination``; bytes copied."""
    directory = os.path.dirname(destination)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".incoming-")
    except OSError as error:
        raise disk_error(error, directory) from None
    digest = hashlib.sha256()
    copied = 0
    try:
        with os.fdopen(fd, "wb") as out:
            left = size
            while left is None or left:
                block = _read(stream, 1 << 20 if left is None else min(left, 1 << 20), origin)
                if not block:
                    if left is None:
                        break
                    raise HostError(f"the connection to {origin} ended while receiving "
                                    f"sha256:{sha256[:12]}", kind="transfer")
                digest.update(block)
                out.write(block)
                copied += len(block)
                if left is not None:
                    left -= len(block)
        if digest.hexdigest() != sha256:
            raise HostError(f"the bytes received from {origin} do not match sha256:{sha256}",
                            kind="integrity")
        os.chmod(tmp, mode)
        os.replace(tmp, destination)
    except OSError as error:
        raise disk_error(error, directory) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return copied


def _read(stream: IO[bytes], size: int, origin: str) -> bytes:
    try:
        return stream.read(size)
    except OSError as error:  # a reset connection or a timeout: not this machine's disk
        raise HostError(f"reading from {origin} failed: {error.strerror or error}",
                        kind="transfer") from None


def copy_verified(source: str, sha256: str, destination: str, mode: int = 0o600) -> int:
    """A store object copied out of a store directory, refused if it was altered."""
    try:
        handle = open(source, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise HostError(f"{source} is not in the store", kind="store") from None
    with handle:
        return receive(handle, os.fstat(handle.fileno()).st_size, sha256, destination, mode,
                       origin=source)


def download(url: str, sha256: str, destination: str, mode: int = 0o600, *,
             origin: str = "the store", token: str = "", size: int | None = None) -> int:
    """An object fetched over HTTP(S), refused if it was altered.

    ``url`` may be a presigned URL and ``token`` a peer's secret: both are credentials,
    so no message names them (urllib's errors do not). A peer is reached directly, never
    through a proxy, which would see the token; with ``size``, no more is read than that.
    """
    request = urllib.request.Request(url)
    opener = urllib.request.build_opener()
    if token:
        request.add_unredirected_header("Authorization", f"Bearer {token}")  # never elsewhere
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=TIMEOUT) as response:
            return receive(response, size, sha256, destination, mode, origin=origin)
    except urllib.error.HTTPError as error:
        raise HostError(f"downloading sha256:{sha256} from {origin} failed: HTTP "
                        f"{error.code} {error.reason}", kind="transfer") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        reason = getattr(error, "reason", None) or type(error).__name__
        raise HostError(f"downloading sha256:{sha256} from {origin} failed: {reason}",
                        kind="transfer") from None


class Arrivals:
    """Objects as they land in place, for a reader in another thread: the archive is
    unpacked while its later chunks are still on their way."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._landed: dict[str, str] = {}
        self._ended = False
        self._error: BaseException | None = None

    def landed(self, sha256: str, path: str) -> None:
        with self._changed:
            self._landed[sha256] = path
            self._changed.notify_all()

    def has(self, sha256: str) -> bool:
        with self._changed:
            return sha256 in self._landed

    def end(self, error: BaseException | None = None) -> None:
        """Nothing more will land (``error``: because receiving failed)."""
        with self._changed:
            self._ended, self._error = True, error
            self._changed.notify_all()

    def path(self, sha256: str) -> str:
        """Where the object is, once it landed; waits for it."""
        with self._changed:
            while sha256 not in self._landed:
                if self._ended:
                    if self._error is not None:
                        raise HostError(f"sha256:{sha256[:12]} did not arrive: {self._error}",
                                        kind="transfer")
                    raise HostError(f"chunk sha256:{sha256[:12]} is neither here nor sent",
                                    kind="store")
                self._changed.wait()
            return self._landed[sha256]


def disk_error(error: OSError, path: str) -> HostError:
    """An OS error while writing, said plainly (a full disk above all), naming the path."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return HostError(f"no space left on the device of {path}", kind="disk")
    return HostError(f"cannot write {path}: {error.strerror or error}", kind="disk")
