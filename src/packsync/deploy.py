"""Dask processes started with a materialized environment's own interpreter.

``EnvScheduler`` and ``EnvWorker`` are ``ProcessInterface``s (``packsync.daskprocess``),
so ``SpecCluster`` drives them as it drives Dask's own deployers. Each runs in a process
group of its own and on close leaves no process behind.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dask.config

from packsync.codeplugin import LINK_VARIABLE
from packsync.daskprocess import (
    DaskProcess,
    SchedulerRole,
    WorkerRole,
    scheduler_spec,
    worker_spec,
)
from packsync.errors import LaunchError
from packsync.uvtool import without_index_settings

logger = logging.getLogger(__name__)

STOP_GRACE = 5.0


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


class EnvProcess(DaskProcess):
    """One ``dask spec`` process on this machine, in a process group of its own."""

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
        super().__init__(spec=spec, args=args, cwd=cwd, name=name)
        self.python = python
        self.env = dict(env or os.environ)
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def interpreter(self) -> str:
        return self.python

    async def _open(self, argv: list[str]) -> None:
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *argv,
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

    async def _readline(self) -> bytes:
        assert self.proc is not None and self.proc.stderr is not None
        return await self.proc.stderr.readline()

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
        self._stop_draining()
        self.proc = None


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class EnvScheduler(SchedulerRole, EnvProcess):
    """A Dask scheduler in the replicated environment (it unpickles user graphs too)."""

    def __init__(self, *, python: str, options: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(python=python, spec=scheduler_spec(options), **kwargs)


class EnvWorker(WorkerRole, EnvProcess):
    """A Dask worker (with its nanny, by default) in the replicated environment."""

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
        super().__init__(
            python=python, spec=worker_spec(name, nanny=nanny, options=options),
            args=(scheduler,), name=str(name), **kwargs,
        )
