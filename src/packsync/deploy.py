"""Dask processes started with a materialized environment's own interpreter.

``EnvScheduler`` and ``EnvWorker`` are ``ProcessInterface``s, so ``SpecCluster`` drives
them as it drives Dask's own deployers. Each runs ``python -m distributed.cli.dask_spec``
in a process group of its own, is ready when its log says so, and on close leaves no
process behind.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dask.config
from distributed.deploy.spec import ProcessInterface

from packsync.codeplugin import LINK_VARIABLE
from packsync.errors import LaunchError
from packsync.uvtool import without_index_settings

logger = logging.getLogger(__name__)

START_TIMEOUT = 120.0
STOP_GRACE = 5.0
_LOG_LINES = 200


def process_environment(code_dir: Path | None) -> dict[str, str]:
    """The client's environment, minus its index settings and what would let its own
    packages leak in.

    ``code_dir`` (the cluster's live code link) goes on ``PYTHONPATH``, and is named in
    ``PACKSYNC_CODE_LINK`` so that live code updates know where to apply.
    """
    env = {
        k: v
        for k, v in without_index_settings(os.environ).items()  # no credential lives on in them
        if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
    }
    env["PYTHONNOUSERSITE"] = "1"  # the client's user site is not part of the environment
    env["PYTHONSAFEPATH"] = "1"  # the working directory is reached through the code bundle
    env["DASK_INTERNAL_INHERIT_CONFIG"] = dask.config.serialize(dask.config.global_config)
    env.pop(LINK_VARIABLE, None)
    if code_dir is not None:
        env["PYTHONPATH"] = str(code_dir)
        env[LINK_VARIABLE] = str(code_dir)
    return env


class EnvProcess(ProcessInterface):
    """One ``dask spec`` process; ready when a line containing ``ready_text`` is logged."""

    ready_text = ""
    role = "process"

    def __init__(
        self,
        *,
        python: str,
        spec: Mapping[str, Any],
        args: tuple[str, ...] = (),
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__()
        self.python = python
        self.spec = dict(spec)
        self.args = args
        self.env = dict(env or os.environ)
        self.cwd = cwd
        self.name = name
        self.proc: asyncio.subprocess.Process | None = None
        self.log: collections.deque[str] = collections.deque(maxlen=_LOG_LINES)
        self._drain: asyncio.Task[None] | None = None

    async def start(self) -> None:
        command = [
            self.python, "-m", "distributed.cli.dask_spec", *self.args,
            "--spec", json.dumps(self.spec),
        ]
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        except OSError as error:
            raise LaunchError(
                f"could not start the Dask {self.role} with {self.python}: {error}",
                path=self.python,
                hint="the cached environment may have been removed; relaunch to rebuild it",
            ) from error
        what = f"the Dask {self.role}" + (f" {self.name}" if self.name else "")
        try:
            line = await asyncio.wait_for(self._read_until_ready(), START_TIMEOUT)
        except (asyncio.TimeoutError, EOFError) as error:
            await self._stop()
            problem = "exited before it was ready" if isinstance(error, EOFError) else (
                f"was not ready within {START_TIMEOUT:.0f} s"
            )
            raise LaunchError(
                f"{what} ({self.python}) {problem}",
                path=self.python,
                log_tail="\n".join(self.log),
                hint="the log above is the process's own",
            ) from None
        self.on_ready(line)
        self._drain = asyncio.ensure_future(self._drain_log())
        await super().start()

    def on_ready(self, line: str) -> None:
        """Read what the ready line says (the scheduler's address)."""

    async def _read_until_ready(self) -> str:
        assert self.proc is not None and self.proc.stderr is not None
        while True:
            raw = await self.proc.stderr.readline()
            if not raw:
                raise EOFError
            line = raw.decode(errors="replace").rstrip()
            self.log.append(line)
            logger.debug("%s %s: %s", self.role, self.name or "", line)
            if self.ready_text in line:
                return line

    async def _drain_log(self) -> None:
        """Keep reading the log, or the process blocks once the pipe is full."""
        assert self.proc is not None and self.proc.stderr is not None
        async for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.log.append(line)
            logger.debug("%s %s: %s", self.role, self.name or "", line)

    async def close(self) -> None:
        await self._stop()
        await super().close()

    async def _stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.returncode is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), STOP_GRACE)
            except asyncio.TimeoutError:
                pass
        # children (the nanny's worker) may outlive their parent: end the whole group
        _signal_group(proc.pid, signal.SIGKILL)
        if proc.returncode is None:
            await proc.wait()
        if self._drain is not None:
            self._drain.cancel()
        self.proc = None


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class EnvScheduler(EnvProcess):
    """A Dask scheduler in the replicated environment (it unpickles user graphs too)."""

    ready_text = "Scheduler at:"
    role = "scheduler"

    def __init__(self, *, python: str, options: Mapping[str, Any], **kwargs: Any) -> None:
        spec = {"cls": "distributed.Scheduler", "opts": dict(options)}
        super().__init__(python=python, spec=spec, **kwargs)

    def on_ready(self, line: str) -> None:
        self.address = line.split("Scheduler at:", 1)[1].strip()
        logger.info("scheduler at %s", self.address)


class EnvWorker(EnvProcess):
    """A Dask worker (with its nanny, by default) in the replicated environment."""

    ready_text = "Registered to:"
    role = "worker"

    def __init__(
        self,
        scheduler: str,
        *,
        python: str,
        name: str | int | None = None,
        nanny: bool = True,
        options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        opts = {**(options or {}), "name": name}
        cls = "distributed.Nanny" if nanny else "distributed.Worker"
        spec = {"cls": cls, "opts": opts}
        super().__init__(
            python=python, spec=spec, args=(scheduler,), name=str(name), **kwargs
        )
