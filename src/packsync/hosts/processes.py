"""Dask scheduler and workers on SSH hosts, as ``ProcessInterface``s ``SpecCluster`` drives.

Each runs under the host-side supervisor in a process group of its own; the group
ends when its SSH channel closes, whether the client closes it, dies, or loses the
host, so no scheduler or worker outlives its cluster on any host.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
from collections.abc import Mapping
from typing import Any

import dask.config
from distributed.deploy.spec import ProcessInterface

from packsync.codeplugin import LINK_VARIABLE
from packsync.errors import LaunchError
from packsync.hosts.prepare import PreparedHost
from packsync.hosts.ssh import events

logger = logging.getLogger(__name__)

START_TIMEOUT = 120.0
STOP_TIMEOUT = 15.0
_LOG_LINES = 200


def remote_environment(host: PreparedHost) -> dict[str, str]:
    """Variables set for Dask processes on ``host`` (the rest is the SSH session's)."""
    env = {
        "PYTHONNOUSERSITE": "1",
        "PYTHONSAFEPATH": "1",
        "DASK_INTERNAL_INHERIT_CONFIG": dask.config.serialize(dask.config.global_config),
    }
    if host.link:
        env["PYTHONPATH"] = host.link
        env[LINK_VARIABLE] = host.link
    return env


class RemoteProcess(ProcessInterface):
    """One ``dask spec`` process on a host; ready when ``ready_text`` appears in its log."""

    ready_text = ""
    role = "process"

    def __init__(
        self,
        *,
        target: PreparedHost,
        spec: Mapping[str, Any],
        args: tuple[str, ...] = (),
        cwd: str | None = None,
        name: str | None = None,
        **_: Any,
    ) -> None:
        super().__init__()
        self.target = target
        self.spec = dict(spec)
        self.args = args
        self.cwd = cwd
        self.name = name
        self.pgid: int | None = None
        self.proc: Any = None
        self.log: collections.deque[str] = collections.deque(maxlen=_LOG_LINES)
        self._drain: asyncio.Task[None] | None = None

    @property
    def host(self) -> str:
        return self.target.name

    def _what(self) -> str:
        return f"the Dask {self.role}{' ' + self.name if self.name else ''} on {self.host}"

    async def start(self) -> None:
        argv = [
            self.target.env_python, "-m", "distributed.cli.dask_spec", *self.args,
            "--spec", json.dumps(self.spec),
        ]
        header = {"action": "run", "argv": argv, "env": remote_environment(self.target),
                  "cwd": self.cwd or ""}
        try:
            self.proc = await self.target.connection.start([self.target.host_python], header)
            await self.proc.stdin.drain()
        except Exception as error:
            await self._stop()
            raise LaunchError(
                f"could not start {self._what()}: {error}", host=self.host,
                hint="the SSH connection to the host failed",
            ) from None
        try:
            line = await asyncio.wait_for(self._until_ready(), START_TIMEOUT)
        except (asyncio.TimeoutError, EOFError) as error:
            await self._stop()
            problem = "exited before it was ready" if isinstance(error, EOFError) else (
                f"was not ready within {START_TIMEOUT:.0f} s"
            )
            raise LaunchError(
                f"{self._what()} ({self.target.env_python}) {problem}",
                host=self.host,
                path=self.target.env_python,
                log_tail="\n".join(self.log),
                hint="the log above is the process's own, from the host",
            ) from None
        self.on_ready(line)
        self._drain = asyncio.ensure_future(self._drain_log())
        await super().start()

    def on_ready(self, line: str) -> None:
        """Read what the ready line says (the scheduler's address)."""

    async def _until_ready(self) -> str:
        started = asyncio.ensure_future(self._started())
        try:
            while True:
                raw = await self.proc.stderr.readline()
                if not raw:
                    raise EOFError
                line = raw.decode(errors="replace").rstrip()
                self.log.append(line)
                logger.debug("%s %s@%s: %s", self.role, self.name or "", self.host, line)
                if self.ready_text in line:
                    return str(line)
        finally:
            if not started.done():
                started.cancel()

    async def _started(self) -> None:
        async for event in events(self.proc.stdout):
            if event.get("event") == "started":
                self.pgid = int(event["pgid"])
            elif event.get("event") == "error":
                self.log.append(f"packsync: {event.get('message')}")

    async def _drain_log(self) -> None:
        try:
            while True:
                raw = await self.proc.stderr.readline()
                if not raw:
                    return
                line = raw.decode(errors="replace").rstrip()
                self.log.append(line)
                logger.debug("%s %s@%s: %s", self.role, self.name or "", self.host, line)
        except Exception:  # the channel went away with its host
            return

    async def close(self) -> None:
        await self._stop()
        await super().close()

    async def _stop(self) -> None:
        """Close stdin: the supervisor ends the process group; kill it directly if need be."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            proc.stdin.write_eof()
            await asyncio.wait_for(proc.wait_closed(), STOP_TIMEOUT)
        except Exception as error:
            logger.debug("stopping %s: %s", self._what(), error)
            if self.pgid is not None:
                try:
                    await asyncio.wait_for(self.target.connection.call(
                        [self.target.host_python], {"action": "cleanup", "pgids": [self.pgid]}
                    ), STOP_TIMEOUT)
                except Exception as cleanup_error:
                    logger.warning("could not stop %s (process group %s): %s",
                                   self._what(), self.pgid, cleanup_error)
        finally:
            proc.close()
            if self._drain is not None:
                self._drain.cancel()


class RemoteScheduler(RemoteProcess):
    """A Dask scheduler on a host, in the replicated environment."""

    ready_text = "Scheduler at:"
    role = "scheduler"

    def __init__(self, *, target: PreparedHost, options: Mapping[str, Any], **kwargs: Any) -> None:
        spec = {"cls": "distributed.Scheduler", "opts": dict(options)}
        super().__init__(target=target, spec=spec, **kwargs)

    def on_ready(self, line: str) -> None:
        self.address = line.split("Scheduler at:", 1)[1].strip()
        logger.info("scheduler at %s on %s", self.address, self.host)


class RemoteWorker(RemoteProcess):
    """A Dask worker (with its nanny, by default) on a host."""

    ready_text = "Registered to:"
    role = "worker"

    def __init__(
        self,
        scheduler: str,
        *,
        target: PreparedHost,
        name: str | int | None = None,
        nanny: bool = True,
        options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        opts = {"host": target.spec.address, **(options or {}), "name": name}
        cls = "distributed.Nanny" if nanny else "distributed.Worker"
        super().__init__(
            target=target, spec={"cls": cls, "opts": opts}, args=(scheduler,), name=str(name),
            **kwargs,
        )
