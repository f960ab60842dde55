"""Live code for a running ``Cluster``: ``sync()`` on demand, and syncing on every save.

With ``watch=True`` the sizes and mtimes of the files that travel are polled every
``packsync.watch-interval`` (default 0.5 s); a change syncs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import dask.config
from dask.utils import parse_timedelta

from packsync.codesync.live import LiveCode, SyncResult
from packsync.errors import PacksyncError

logger = logging.getLogger(__name__)

@dataclass(frozen=True, kw_only=True, slots=True)
class WatchSettings:
    """Whether to sync on every save, and how often to look."""

    enabled: bool
    interval: float  # seconds


def watch_settings(watch: bool | None) -> WatchSettings:
    """``watch`` (default: Dask config ``packsync.watch``), and the config's interval."""
    interval = parse_timedelta(
        dask.config.get("packsync.watch-interval", default="500ms"), default="seconds"
    )
    return WatchSettings(
        enabled=bool(watch if watch is not None else dask.config.get(
            "packsync.watch", default=False)),
        interval=float(interval),
    )


class LiveSync:
    """The syncs of one cluster's working-directory code, one at a time."""

    def __init__(self, live: LiveCode, *, on_scheduler: bool) -> None:
        self.live = live
        self.on_scheduler = on_scheduler  # False: a scheduler in this process has our files
        self._lock: asyncio.Lock | None = None

    async def sync(self, scheduler_comm: Any) -> SyncResult:
        """Send the files changed since the last sync; nothing if none changed."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            start = time.perf_counter()
            update = await asyncio.to_thread(self.live.next_update)
            if update is None:
                return SyncResult(code_id=self.live.code_id, sent=(), deleted=(), workers=0,
                                  seconds=time.perf_counter() - start)
            result = await self.live.push(update, scheduler_comm, on_scheduler=self.on_scheduler)
            logger.info("code %s: sent %s to the scheduler and %d workers",
                        result.code_id[:12], ", ".join(result.sent) or "no file", result.workers)
            return result


class CodeWatcher:
    """Polls the code roots and syncs when a file changed; a failed sync is logged, not fatal."""

    def __init__(
        self, live: LiveCode, sync: Callable[[], Awaitable[object]], *, interval: float
    ) -> None:
        self.live = live
        self.sync = sync
        self.interval = interval
        self._task: asyncio.Future[None] | None = None

    def start(self) -> None:
        """Watch from now on (call in the cluster's event loop)."""
        self._task = asyncio.ensure_future(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self._check()

    async def _check(self) -> None:
        try:
            if await asyncio.to_thread(self.live.touched):
                await self.sync()
        except PacksyncError as error:
            logger.warning("code not synced: %s", error)
        except Exception:
            logger.exception("code not synced")
