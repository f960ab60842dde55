"""Progress reporting: the library says what it is doing, the caller decides how to show it.

The library never prints. Long steps report through a ``Reporter``; the CLI plugs
in a rich implementation, tests and libraries use ``NullReporter`` or record events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

logger = logging.getLogger(__name__)


class Reporter(Protocol):
    """Receives what packsync is doing, as it happens."""

    def stage_started(self, stage: str, detail: str) -> None: ...

    def stage_finished(self, stage: str, seconds: float, detail: str) -> None: ...

    def step(self, stage: str, message: str) -> None: ...


class NullReporter:
    """Reports nothing; the default for library use."""

    def stage_started(self, stage: str, detail: str) -> None:
        pass

    def stage_finished(self, stage: str, seconds: float, detail: str) -> None:
        pass

    def step(self, stage: str, message: str) -> None:
        pass


class StageClock:
    """Records how long each stage took and forwards every event to another reporter."""

    def __init__(self, inner: Reporter | None = None) -> None:
        self.inner: Reporter = inner or NullReporter()
        self.seconds: dict[str, float] = {}

    def stage_started(self, stage: str, detail: str) -> None:
        self.inner.stage_started(stage, detail)

    def stage_finished(self, stage: str, seconds: float, detail: str) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds
        self.inner.stage_finished(stage, seconds, detail)

    def step(self, stage: str, message: str) -> None:
        self.inner.step(stage, message)


class Stage:
    """The running stage; lets the body set the detail shown when it ends."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.detail = ""


@contextmanager
def stage(reporter: Reporter, name: str, detail: str = "") -> Iterator[Stage]:
    """Time a stage, log it, and tell the reporter when it starts and ends."""
    logger.debug("%s: started %s", name, detail)
    reporter.stage_started(name, detail)
    current = Stage(name)
    started = time.perf_counter()
    try:
        yield current
    except BaseException:
        reporter.stage_finished(name, time.perf_counter() - started, "failed")
        raise
    seconds = time.perf_counter() - started
    logger.info("%s: %.3f s %s", name, seconds, current.detail)
    reporter.stage_finished(name, seconds, current.detail)
