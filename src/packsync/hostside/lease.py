"""Leases: an environment in use is never removed, and a crash gives its lease back.

Every process that runs from an environment holds a shared ``flock`` on the
environment's lease file (``<cache>/envs/<env_id>.lease``): the client that materialized
it, and the Dask processes started from it, which inherit the client's locked file (on
this machine), the host side's ``run`` process's (on an SSH host) or the worker command's
(kept across its ``exec``). The kernel drops the lock when the last of them exits, however
it exits. The collector removes an environment only while it holds the lease file
exclusively, so nothing can start from it meanwhile; whoever waited for the lease then
finds the environment gone and builds it again.

On the client, a cluster holds the lease while it is open (``use``, ``end_use``), not for
the life of the process: a long-lived notebook does not keep the environments of its
closed clusters from being collected.

A lease file removed by the collector may still be open in a process that waited for it:
a lease is held only once the locked file is the one at the path (as for any lock file
that is ever unlinked).

Standard library only: this runs on hosts too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator

_HELD: dict[str, int] = {}  # environment directory -> the locked lease file's descriptor
_USES: dict[str, int] = {}  # environment directory -> clusters of this process using it
_GUARD = threading.RLock()
SUFFIX = ".lease"


def lease_path(env_path: str) -> str:
    return env_path + SUFFIX


def open_locked(path: str, operation: int) -> int | None:
    """A descriptor of ``path`` locked with ``operation`` (which may carry ``LOCK_NB``), once
    the locked file is the one at ``path``; None when a non-blocking lock was refused."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, operation)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # removed (and maybe made anew) while we waited: lock the one there now


def hold(env_path: str) -> int:
    """Hold the lease of the environment at ``env_path`` for the rest of this process (once
    per environment); the locked descriptor, for the processes this one starts."""
    with _GUARD:
        fd = _HELD.get(env_path)
        if fd is None:
            os.makedirs(os.path.dirname(env_path), mode=0o700, exist_ok=True)
            fd = open_locked(lease_path(env_path), fcntl.LOCK_SH)
            assert fd is not None
            _HELD[env_path] = fd
        return fd


def release(env_path: str) -> None:
    """Give back this process's lease of the environment (its children keep theirs)."""
    with _GUARD:
        fd = _HELD.pop(env_path, None)
        _USES.pop(env_path, None)
    if fd is not None:
        os.close(fd)


def use(env_path: str) -> None:
    """One more user of the environment in this process (a cluster, while it is open):
    the lease is held until the last one ends (``end_use``)."""
    with _GUARD:
        _USES[env_path] = _USES.get(env_path, 0) + 1
        hold(env_path)


def end_use(env_path: str) -> None:
    """One user of the environment less; with none left the lease is given back (the
    processes started from it keep theirs while they run), and the environment can be
    collected once they are gone."""
    with _GUARD:
        left = _USES.get(env_path, 0) - 1
        if left > 0:
            _USES[env_path] = left
            return
        release(env_path)


class Use:
    """One user's hold of an environment's lease (``use``), ended once by ``end``, which
    may be called again: a cluster ends it at close and on a failed start alike."""

    __slots__ = ("env_path", "_open")

    def __init__(self, env_path: str) -> None:
        self.env_path = env_path
        use(env_path)
        self._open = True

    def end(self) -> None:
        if self._open:
            self._open = False
            end_use(self.env_path)


def holds(env_path: str) -> bool:
    return env_path in _HELD


def only_holder(env_path: str) -> bool:
    """Whether no other process holds the environment's lease (this one may)."""
    fd = _HELD.get(env_path)
    if fd is None:
        return not in_use(env_path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    fcntl.flock(fd, fcntl.LOCK_SH)
    return True


def in_use(env_path: str) -> bool:
    """Whether any process holds the environment's lease."""
    path = lease_path(env_path)
    if not os.path.exists(path):
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


@contextlib.contextmanager
def exclusive(env_path: str) -> Iterator[bool]:
    """The lease held exclusively while the environment is removed; False if it is in use.
    The lease file goes with the environment (still locked, so no use starts meanwhile)."""
    path = lease_path(env_path)
    fd = open_locked(path, fcntl.LOCK_EX | fcntl.LOCK_NB)
    if fd is None:
        yield False
        return
    try:
        yield True
    finally:
        with contextlib.suppress(FileNotFoundError):
            if not os.path.isdir(env_path):
                os.unlink(path)
        os.close(fd)


def environment_of(python: str) -> str | None:
    """The cached environment whose interpreter ``python`` is (``<cache>/envs/<id>/bin/python``)."""
    env = os.path.dirname(os.path.dirname(os.path.abspath(python)))
    if os.path.basename(os.path.dirname(env)) != "envs":
        return None
    return env if os.path.isdir(env) else None


def inherited(python: str) -> tuple[int, ...]:
    """The lease descriptors a process running ``python`` is to inherit (``pass_fds``):
    the lease of its environment, held by this process from now on."""
    env = environment_of(python)
    return () if env is None else (hold(env),)


def keep_across_exec(env_path: str) -> None:
    """Hold the environment's lease in the program this process is about to ``exec``."""
    os.set_inheritable(hold(env_path), True)
