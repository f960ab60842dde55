"""Dask scheduler and workers on SSH hosts, as ``ProcessInterface``s ``SpecCluster`` drives.

Each runs under the host-side supervisor in a process group of its own; the group
ends when its SSH channel closes, whether the client closes it, dies, or loses the
host, so no scheduler or worker outlives its cluster on any host.

A nanny starts its worker through a forkserver that imports ``distributed`` while the
nanny does, as on this machine (``packsync.launch.local``): the worker, and every
restart of it, is a fork with nothing left to import, instead of a second interpreter
importing ``distributed`` after the first.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Mapping
from typing import Any

from packsync.codesync.plugin import LINK_VARIABLE
from packsync.errors import LaunchError
from packsync.launch.hosts.prepare import PreparedHost
from packsync.launch.hosts.ssh import events
from packsync.launch.local import NANNIES_MAIN, forkserver_environment
from packsync.launch.processes import (
    DaskProcess,
    SchedulerRole,
    WorkerRole,
    dask_options,
    scheduler_spec,
    worker_spec,
)
from packsync.launch.security import inherited_config

logger = logging.getLogger(__name__)

STOP_TIMEOUT = 15.0


def remote_environment(host: PreparedHost) -> dict[str, str]:
    """Variables set for Dask processes on ``host`` (the rest is the SSH session's)."""
    env = {
        "PYTHONNOUSERSITE": "1",
        "PYTHONSAFEPATH": "1",
        "DASK_INTERNAL_INHERIT_CONFIG": inherited_config(),
    }
    if host.link:
        env["PYTHONPATH"] = host.link
        env[LINK_VARIABLE] = host.link
    return env


class RemoteProcess(DaskProcess):
    """One ``dask spec`` process on a host, under the host-side supervisor."""

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
        super().__init__(spec=spec, args=args, cwd=cwd, name=name)
        self.target = target
        self.pgid: int | None = None
        self.proc: Any = None

    @property
    def host(self) -> str:
        return self.target.name

    @property
    def interpreter(self) -> str:
        return self.target.env_python

    @property
    def location(self) -> str:
        return self.host

    def _error_fields(self) -> dict[str, Any]:
        return {"host": self.host, "path": self.interpreter,
                "hint": "the log above is the process's own, from the host"}

    async def _open(self, argv: list[str], payload: bytes) -> None:
        # the spec (credentials included) travels in the header, over the SSH channel,
        # and the host side writes it to the process's stdin: never on a command line
        header = {"action": "run", "argv": argv, "env": self.environment(),
                  "env_defaults": self.environment_defaults(), "cwd": self.cwd or "",
                  "stdin": base64.b64encode(payload).decode()}
        try:
            self.proc = await self.target.connection.start([self.target.host_python], header)
            await self.proc.stdin.drain()
        except Exception as error:
            await self._stop()
            raise LaunchError(
                f"could not start {self.describe()}: {error}", host=self.host,
                hint="the SSH connection to the host failed",
            ) from None

    def environment(self) -> dict[str, str]:
        """Variables set for the process, whatever the host's environment says."""
        return remote_environment(self.target)

    def environment_defaults(self) -> dict[str, str]:
        """Variables set for the process unless the host's own environment sets them."""
        return {}

    async def _readline(self) -> bytes:
        line: bytes = await self.proc.stderr.readline()
        return line

    async def _until_ready(self) -> str:
        started = asyncio.ensure_future(self._started())  # the supervisor's events, meanwhile
        try:
            return await super()._until_ready()
        finally:
            if not started.done():
                started.cancel()

    async def _started(self) -> None:
        async for event in events(self.proc.stdout):
            if event.get("event") == "started":
                self.pgid = int(event["pgid"])
            elif event.get("event") == "error":
                self.log.append(f"packsync: {event.get('message')}")

    async def _stop(self) -> None:
        """Close stdin: the supervisor ends the process group; kill it directly if need be."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            proc.stdin.write_eof()
            await asyncio.wait_for(proc.wait_closed(), STOP_TIMEOUT)
        except Exception as error:
            logger.debug("stopping %s: %s", self.describe(), error)
            if self.pgid is not None:
                try:
                    await asyncio.wait_for(self.target.connection.call(
                        [self.target.host_python], {"action": "cleanup", "pgids": [self.pgid]}
                    ), STOP_TIMEOUT)
                except Exception as cleanup_error:
                    logger.warning("could not stop %s (process group %s): %s",
                                   self.describe(), self.pgid, cleanup_error)
        finally:
            proc.close()
            self._stop_draining()


class RemoteScheduler(SchedulerRole, RemoteProcess):
    """A Dask scheduler on a host, in the replicated environment."""

    def __init__(self, *, target: PreparedHost, options: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(target=target, spec=scheduler_spec(options), **kwargs)


class RemoteWorker(WorkerRole, RemoteProcess):
    """A Dask worker (with its nanny, by default) on a host.

    Its spec's options are flat, as ``SpecCluster`` reads them: ``target`` and ``nanny``
    for the process, every other one for Dask's ``Nanny`` or ``Worker``.
    """

    def __init__(
        self,
        scheduler: str,
        *,
        target: PreparedHost,
        name: str | int | None = None,
        nanny: bool = True,
        **options: Any,
    ) -> None:
        options = {"host": target.spec.address, **dask_options(options)}
        super().__init__(
            target=target, spec=worker_spec(name, nanny=nanny, options=options),
            args=(scheduler,), name=str(name),
        )
        self.options = options
        self.nanny = nanny

    def command(self) -> list[str]:
        if not self.nanny:
            return super().command()
        return [self.interpreter, "-c", NANNIES_MAIN, *self.args]

    def _nanny_environment(self) -> dict[str, str]:
        """What the nanny sets for its worker, set from the start so that its forkserver
        has it; nothing when Dask is set to start workers some other way."""
        return forkserver_environment({}) if self.nanny else {}

    def environment(self) -> dict[str, str]:
        env = super().environment()
        seed = self._nanny_environment().get("PYTHONHASHSEED")
        if seed:  # fixed when the forkserver starts; a nanny sets it whatever the host says,
            env["PYTHONHASHSEED"] = seed  # so that every worker of the cluster hashes alike
        return env

    def environment_defaults(self) -> dict[str, str]:
        defaults = self._nanny_environment()  # the host's own values win, as with Dask
        defaults.pop("PYTHONHASHSEED", None)
        return defaults
