"""One Dask scheduler or worker process, wherever it runs, as ``SpecCluster`` drives it.

``DaskProcess`` holds what every such process shares: the ``dask spec`` command line,
waiting for the line that says it is ready (within ``START_TIMEOUT``, else one
``LaunchError`` with the tail of its own log), reading its log afterwards so it never
blocks on a full pipe, and stopping it on close. A subclass says only how it opens
the process, reads one line of its log and stops it: a local process group
(``packsync.launch.local``) or a supervised process on an SSH host (``packsync.launch.hosts``).
The scheduler and worker roles (ready line, address, spec) are mixins on top.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
from collections.abc import Mapping
from typing import Any

from distributed.deploy.spec import ProcessInterface

from packsync.errors import LaunchError

logger = logging.getLogger(__name__)

START_TIMEOUT = 120.0
LOG_LINES = 200


class DaskProcess(ProcessInterface):
    """A ``python -m distributed.cli.dask_spec`` process; ready when ``ready_text`` is logged."""

    ready_text = ""
    role = "process"

    def __init__(
        self,
        *,
        spec: Mapping[str, Any],
        args: tuple[str, ...] = (),
        cwd: str | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__()
        self.spec = dict(spec)
        self.args = args
        self.cwd = cwd
        self.name = name
        self.log: collections.deque[str] = collections.deque(maxlen=LOG_LINES)
        self._drain: asyncio.Task[None] | None = None

    # --- what a subclass supplies ---------------------------------------------------------

    @property
    def interpreter(self) -> str:
        """The Python that runs ``dask spec`` (the environment's own)."""
        raise NotImplementedError

    @property
    def location(self) -> str:
        """Where the process runs, as errors and logs say it (``""``: this machine)."""
        return ""

    async def _open(self, argv: list[str]) -> None:
        """Start ``argv``; a failure to start is a ``LaunchError`` naming the cause."""
        raise NotImplementedError

    async def _readline(self) -> bytes:
        """One line of the process's log (its stderr); ``b""`` once it has ended."""
        raise NotImplementedError

    async def _stop(self) -> None:
        """End the process and everything it started; safe to call twice."""
        raise NotImplementedError

    def _error_fields(self) -> dict[str, Any]:
        """What a ``LaunchError`` about this process carries besides its message."""
        return {"path": self.interpreter, "hint": "the log above is the process's own"}

    # --- shared -----------------------------------------------------------------------------

    def describe(self) -> str:
        """``the Dask worker 3 on host``: how errors name this process."""
        name = f" {self.name}" if self.name else ""
        where = f" on {self.location}" if self.location else ""
        return f"the Dask {self.role}{name}{where}"

    def command(self) -> list[str]:
        return [
            self.interpreter, "-m", "distributed.cli.dask_spec", *self.args,
            "--spec", json.dumps(self.spec),
        ]

    async def start(self) -> None:
        await self._open(self.command())
        try:
            line = await asyncio.wait_for(self._until_ready(), START_TIMEOUT)
        except (asyncio.TimeoutError, EOFError) as error:
            await self._stop()
            problem = "exited before it was ready" if isinstance(error, EOFError) else (
                f"was not ready within {START_TIMEOUT:.0f} s"
            )
            raise LaunchError(
                f"{self.describe()} ({self.interpreter}) {problem}",
                log_tail="\n".join(self.log),
                **self._error_fields(),
            ) from None
        self.on_ready(line)
        self._drain = asyncio.ensure_future(self._drain_log())
        await super().start()

    def on_ready(self, line: str) -> None:
        """Read what the ready line says (the scheduler's address)."""

    async def _until_ready(self) -> str:
        while True:
            line = await self._next_line()
            if self.ready_text in line:
                return line

    async def _next_line(self) -> str:
        raw = await self._readline()
        if not raw:
            raise EOFError
        line = raw.decode(errors="replace").rstrip()
        self.log.append(line)
        logger.debug("%s %s%s: %s", self.role, self.name or "",
                     f"@{self.location}" if self.location else "", line)
        return line

    async def _drain_log(self) -> None:
        """Keep reading the log, or the process blocks once the pipe is full."""
        try:
            while True:
                await self._next_line()
        except EOFError:
            return
        except Exception:  # the pipe or channel went away with the process or its host
            return

    def _stop_draining(self) -> None:
        if self._drain is not None:
            self._drain.cancel()
            self._drain = None

    async def close(self) -> None:
        await self._stop()
        await super().close()


class SchedulerRole(DaskProcess):
    """The scheduler: ready when it logs its address."""

    ready_text = "Scheduler at:"
    role = "scheduler"

    def on_ready(self, line: str) -> None:
        self.address = line.split("Scheduler at:", 1)[1].strip()
        where = f" on {self.location}" if self.location else ""
        logger.info("scheduler at %s%s", self.address, where)


class WorkerRole(DaskProcess):
    """A worker (with its nanny, by default): ready once registered with the scheduler."""

    ready_text = "Registered to:"
    role = "worker"


def scheduler_spec(options: Mapping[str, Any]) -> dict[str, Any]:
    """The ``dask spec`` of a scheduler with these options."""
    return {"cls": "distributed.Scheduler", "opts": dict(options)}


def worker_spec(
    name: str | int | None, *, nanny: bool, options: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The ``dask spec`` of a worker (a nanny and its worker by default) named ``name``."""
    cls = "distributed.Nanny" if nanny else "distributed.Worker"
    return {"cls": cls, "opts": {**(options or {}), "name": name}}
