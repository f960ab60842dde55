"""The lock of an environment's builders, which a ``kill -9`` of a builder cannot outlive.

A file lock is released the moment its holder dies, but the holder's children do not die
with it: a uv killed with its parent's ``kill -9`` would go on writing for seconds. So a
builder writes into the lock file who it is (host, pid, start time) and every child it
starts (each in a process group of its own, ``supervise``), and hands the locked file to
those children: while any of them lives, the lock stays held. The next builder that finds
the lock held by a dead builder ends the recorded children's groups (only those whose pid
and start time still match: a pid may have been reused), then takes the lock and clears
what they left.

Standard library only: this runs on hosts too.
"""

from __future__ import annotations

import contextlib
import contextvars
import fcntl
import os
import signal
import socket
import time
from collections.abc import Iterator

from packsync.hostside import lease

_CURRENT: contextvars.ContextVar[BuildLock | None] = contextvars.ContextVar(
    "packsync_build_lock", default=None)
ORPHAN_GRACE = 10.0  # seconds an ended orphan group has to disappear


def start_time(pid: int) -> str:
    """The start time of process ``pid`` (clock ticks since boot), or "" if unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return fields[19]
    except (OSError, IndexError):
        return ""


def alive(pid: int, started: str) -> bool:
    """Whether ``pid`` is still the process that started at ``started``."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not started or start_time(pid) in ("", started)


class BuildLock:
    """The exclusive lock of ``path``, with a record of its holder and the holder's children."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = -1
        self.host = socket.gethostname()

    def acquire(self) -> None:
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        fd = lease.open_locked(self.path, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if fd is None:  # a live builder, or the children of a dead one
            with contextlib.suppress(FileNotFoundError):
                waiting = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    self._end_orphans(waiting)
                finally:
                    os.close(waiting)
            fd = lease.open_locked(self.path, fcntl.LOCK_EX)
            assert fd is not None
        self.fd = fd
        self._end_orphans(fd)  # children of a dead holder that did not hold the lock
        self._write(f"holder {self.host} {os.getpid()} {start_time(os.getpid())}\n", truncate=True)

    def release(self) -> None:
        if self.fd < 0:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, 0)
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = -1

    def child_started(self, pid: int) -> None:
        """Record a child (the leader of its own process group) of this builder."""
        self._write(f"child {self.host} {pid} {start_time(pid)}\n")

    def _write(self, line: str, *, truncate: bool = False) -> None:
        with contextlib.suppress(OSError):  # a full disk must not hide the build's own error
            if truncate:
                os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, line.encode(), os.fstat(self.fd).st_size)

    def _records(self, fd: int) -> list[tuple[str, str, int, str]]:
        try:
            text = os.pread(fd, 1 << 16, 0).decode(errors="replace")
        except OSError:
            return []
        found = []
        for line in text.splitlines():
            parts = line.split()
            if len(parts) in (3, 4) and parts[2].isdigit():
                found.append((parts[0], parts[1], int(parts[2]),
                              parts[3] if len(parts) == 4 else ""))
        return found

    def _end_orphans(self, fd: int) -> None:
        """End the children of a holder that died (on this machine) before they ended."""
        records = self._records(fd)
        holders = [r for r in records if r[0] == "holder"]
        if not holders or holders[0][1] != self.host:
            return
        _, _, pid, started = holders[0]
        if alive(pid, started):
            return  # a live builder (maybe another thread of this process): wait for it
        orphans = [(p, s) for kind, host, p, s in records
                   if kind == "child" and host == self.host and s and alive(p, s)]
        for child, _ in orphans:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child, signal.SIGKILL)
        deadline = time.monotonic() + ORPHAN_GRACE
        while orphans and time.monotonic() < deadline:
            orphans = [(p, s) for p, s in orphans if alive(p, s) and not _zombie(p)]
            time.sleep(0.02)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


@contextlib.contextmanager
def holding(path: str) -> Iterator[BuildLock]:
    """Hold the builders' lock ``path``; children started meanwhile are recorded in it."""
    lock = BuildLock(path)
    lock.acquire()
    token = _CURRENT.set(lock)
    try:
        yield lock
    finally:
        _CURRENT.reset(token)
        lock.release()


def current() -> BuildLock | None:
    """The build lock this thread holds, if any: its children must hold it too."""
    return _CURRENT.get()
