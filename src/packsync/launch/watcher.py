"""Live code for a running ``Cluster``: ``sync()`` on demand, and syncing on every save.

With ``watch=True`` the code roots are watched with watchfiles (inotify on Linux,
FSEvents on macOS, ReadDirectoryChangesW on Windows): a save is seen as it happens and
its sync starts some 50 ms later, and an idle watcher walks nothing. Polling (a walk
of the roots every ``packsync.watch-interval``) is used instead when watchfiles cannot
watch them:

- watchfiles is not installed;
- a root is on a network or host-shared filesystem (NFS, SMB, sshfs, 9p, virtiofs, ...),
  where a save made on another machine raises no event on this one;
- watching fails to start or stops with an error (the inotify watch limit reached, a
  root removed, a folder this process may not read): the error is logged and polling
  takes over;
- Dask config ``packsync.watch-method: polling`` asks for it.

``packsync.watch-interval`` (default 0.5 s) bounds how long a save waits before its sync
starts, either way: with watchfiles it is the longest a burst of saves is gathered into
one sync (a lone save goes after 50 ms of quiet), when polling the poll period. Every
batch of events is confirmed by ``LiveCode.touched`` (sizes and mtimes of the files
that travel) before it syncs: an event for a file that does not travel sends nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from packsync import config
from packsync.codesync.live import LiveCode, SyncResult
from packsync.errors import PacksyncError

try:
    import watchfiles
except ImportError:  # pragma: no cover - a platform without its wheel
    watchfiles = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

WatchMethod = Literal["watchfiles", "polling"]
STEP_MS = 50  # quiet time after the last event before a batch is synced

# Filesystems whose changes made elsewhere (another machine, the VM's host) raise no
# inotify event here.
REMOTE_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "virtiofs", "vboxsf", "fakeowner",
    "afs", "ceph", "glusterfs", "lustre", "gpfs", "fuse.sshfs", "fuse.rclone",
    "fuse.s3fs", "fuse.gcsfuse", "fuse.grpcfuse", "fuse.glusterfs", "fuse.ceph",
})


@dataclass(frozen=True, kw_only=True, slots=True)
class WatchSettings:
    """Whether to sync on every save, within how long, and whether polling is forced."""

    enabled: bool
    interval: float  # seconds
    method: Literal["auto", "polling"] = "auto"


def watch_settings(watch: bool | None) -> WatchSettings:
    """``watch`` (default: Dask config ``packsync.watch``), the config's interval and method."""
    method = config.watch_method()
    return WatchSettings(
        enabled=bool(watch if watch is not None else config.watch()),
        interval=config.watch_interval(),
        method="polling" if method == "polling" else "auto",
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
    """Syncs the code roots on every save until closed; a failed sync is logged, not fatal."""

    def __init__(
        self,
        live: LiveCode,
        sync: Callable[[], Awaitable[object]],
        *,
        interval: float,
        method: Literal["auto", "polling"] = "auto",
    ) -> None:
        self.live = live
        self.sync = sync
        self.interval = interval
        self.method, reason = choose_method(live.roots, method)
        if reason:
            logger.info("watching code by polling every %g s: %s", interval, reason)
        self._stop = threading.Event()
        self._task: asyncio.Future[None] | None = None
        self._thread: threading.Thread | None = None

    def describe(self) -> str:
        """How saves are noticed, as the cluster's summary says it."""
        if self.method == "polling":
            return f"polling every {self.interval:g} s"
        return "watchfiles"

    def start(self) -> None:
        """Watch from now on (call in the cluster's event loop)."""
        self._task = asyncio.ensure_future(self._run())

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        thread, self._thread = self._thread, None
        # it ends within a step once stopped, and its watches with it; waited for here
        # without an executor thread, as close() may run at interpreter exit
        deadline = time.monotonic() + 5.0
        while thread is not None and thread.is_alive() and time.monotonic() < deadline:
            await asyncio.sleep(STEP_MS / 1000)

    async def _run(self) -> None:
        if self.method == "watchfiles":
            try:
                await self._on_events()
            except WatchFailed as error:
                logger.warning("watching code with watchfiles failed (%s): polling every %g s",
                               error, self.interval)
                self.method = "polling"
        while True:
            await asyncio.sleep(self.interval)
            await self._check()

    async def _on_events(self) -> None:
        """Check after each batch of events; the first check once the watches are set."""
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        failures: list[BaseException] = []

        def notify() -> None:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:  # the loop closed: nobody is left to sync
                pass

        def watch() -> None:
            ready = False
            try:
                for changes in self._events():
                    if changes or not ready:  # the first yield (a timeout, at worst) = ready
                        ready = True
                        notify()
            except Exception as error:
                failures.append(error)
                notify()

        self._thread = threading.Thread(target=watch, name="packsync-code-watch", daemon=True)
        self._thread.start()
        while True:
            await wake.wait()
            wake.clear()
            if failures:
                raise WatchFailed(str(failures[0]) or type(failures[0]).__name__)
            await self._check()

    def _events(self) -> Iterable[set[Any]]:
        interval_ms = max(STEP_MS, int(self.interval * 1000))
        return watchfiles.watch(
            *self.live.roots,
            watch_filter=travelling_filter(self.live.roots),
            debounce=interval_ms,
            step=STEP_MS,
            rust_timeout=interval_ms,
            yield_on_timeout=True,
            stop_event=self._stop,
            raise_interrupt=False,
            # a root removed, or a folder this process may not read: polling copes with both
            ignore_permission_denied=False,
        )

    async def _check(self) -> None:
        try:
            if await asyncio.to_thread(self.live.touched):
                await self.sync()
        except PacksyncError as error:
            logger.warning("code not synced: %s", error)
        except Exception:
            logger.exception("code not synced")


class WatchFailed(Exception):
    """watchfiles could not watch the code roots, or stopped with an error."""


def choose_method(
    roots: Sequence[str], requested: str, mountinfo: str | None = None
) -> tuple[WatchMethod, str]:
    """watchfiles, or polling and why (``mountinfo``: as ``filesystem_type`` takes it)."""
    if requested == "polling":
        return "polling", "packsync.watch-method is 'polling'"
    if watchfiles is None:
        return "polling", "watchfiles is not installed"
    if not roots:
        return "polling", "no code root to watch"
    for root in roots:
        kind = filesystem_type(root, mountinfo)
        if kind in REMOTE_FILESYSTEMS:
            return "polling", (f"{root} is on {kind}, where saves made on another machine "
                               "raise no event here")
    return "watchfiles", ""


def travelling_filter(roots: Sequence[str]) -> Callable[[Any, str], bool]:
    """Drop events below hidden and ``__pycache__`` folders of a root: nothing there travels
    (``packsync.scan.workdir``), and Git, venvs and imports write there often."""
    prefixes = tuple(os.path.join(root, "") for root in roots)

    def keep(change: Any, path: str) -> bool:
        for prefix in prefixes:
            if path.startswith(prefix):
                folders = path[len(prefix):].split(os.sep)[:-1]
                return not any(f.startswith(".") or f == "__pycache__" for f in folders)
        return True

    return keep


def filesystem_type(path: str, mountinfo: str | None = None) -> str | None:
    """The type of the filesystem ``path`` is on (``/proc/self/mountinfo``); None if unknown."""
    if mountinfo is None:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text()
        except OSError:
            return None
    target = os.path.realpath(path)
    best, kind = "", None
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" not in fields[5:] or fields[-1] == "-":
            continue
        point = _unescape(fields[4])
        below = point == "/" or target == point or target.startswith(point.rstrip("/") + "/")
        if below and len(point) >= len(best):  # the deepest mount; a later one over it wins
            best, kind = point, fields[fields.index("-", 5) + 1]
    return kind


def _unescape(field: str) -> str:
    """Mount points escape space, tab, newline and backslash as octal (``\\040``)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)
