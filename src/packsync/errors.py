"""Errors: one base class, one subclass per stage.

Every error carries what a user needs to act (the package, host, file or digest at
fault, and a hint) and stays picklable, because errors raised while preparing a
worker cross Dask process boundaries.
"""

from __future__ import annotations

from typing import Any


class PacksyncError(Exception):
    """Base class of every error packsync raises on purpose."""

    stage = "packsync"

    def __init__(
        self,
        message: str,
        *,
        hint: str = "",
        package: str = "",
        host: str = "",
        path: str = "",
        digest: str = "",
        log_tail: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.package = package
        self.host = host
        self.path = path
        self.digest = digest
        self.log_tail = log_tail

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self._fields()))

    def _fields(self) -> dict[str, str]:
        return {
            "hint": self.hint,
            "package": self.package,
            "host": self.host,
            "path": self.path,
            "digest": self.digest,
            "log_tail": self.log_tail,
        }

    def __str__(self) -> str:
        text = self.message
        if self.log_tail:
            text += "\n--- last lines of the log ---\n" + self.log_tail.rstrip()
        if self.hint:
            text += f"\nhint: {self.hint}"
        return text


def _rebuild(cls: type[PacksyncError], message: str, fields: dict[str, str]) -> PacksyncError:
    return cls(message, **fields)


class ScanError(PacksyncError):
    stage = "scan"


class PlanError(PacksyncError):
    stage = "plan"


class BuildError(PacksyncError):
    stage = "build"


class LockError(PacksyncError):
    stage = "lock"


class StoreError(PacksyncError):
    stage = "store"


class IntegrityError(StoreError):
    """A stored object does not match the digest it is stored under."""


class MaterializeError(PacksyncError):
    stage = "materialize"


class LaunchError(PacksyncError):
    stage = "launch"


class ProcessStartError(LaunchError, RuntimeError):
    """A scheduler or worker process that exited before it was ready: a ``RuntimeError``
    too, as Dask's own ``Nanny failed to start`` is, so that Dask code catching that
    catches this."""


class StartTimeoutError(LaunchError, TimeoutError):
    """A scheduler or worker process not ready in time: a ``TimeoutError`` too, as Dask
    raises when a start outlasts its timeout."""


class SyncError(PacksyncError):
    stage = "sync"


def tail(text: str, lines: int = 25) -> str:
    """The last lines of a log, which is what a user reads first."""
    return "\n".join(text.rstrip().splitlines()[-lines:])
