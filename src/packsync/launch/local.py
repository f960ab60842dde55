"""Dask processes started with a materialized environment's own interpreter.

``EnvScheduler`` and ``EnvWorker`` are ``ProcessInterface``s (``packsync.launch.processes``),
so ``SpecCluster`` drives them as it drives Dask's own deployers. Each runs in a process
group of its own and on close leaves no process behind.

``EnvNannies`` runs the nannies of a launch's first workers in one process, and
``SharedWorker`` is one worker of it as ``SpecCluster`` sees it. A nanny process of its
own per worker imports ``distributed`` before its worker process imports it again; on
a small machine those imports are most of a warm launch. The shared process has its
nannies start workers through a forkserver that imported ``distributed`` once, so each
worker process is a fork with nothing left to import (restarts take a fraction of a
second too). The forkserver is a fresh interpreter of the environment started by the
shared process, with its ``sys.path`` and environment (the live code link included),
never the client's.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dask.config
from distributed.core import rpc
from distributed.deploy.spec import ProcessInterface

from packsync.codesync.plugin import LINK_VARIABLE
from packsync.errors import LaunchError
from packsync.hostside import lease
from packsync.launch.processes import (
    SPEC_RUNNER,
    DaskProcess,
    SchedulerRole,
    WorkerFacts,
    WorkerRole,
    listen_scheme,
    scheduler_spec,
    worker_spec,
)
from packsync.launch.security import inherited_config
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
    env["DASK_INTERNAL_INHERIT_CONFIG"] = inherited_config()
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
        environ: Mapping[str, str] | None = None,
        cwd: str | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(spec=spec, args=args, cwd=cwd, name=name)
        self.python = python
        self.env = dict(environ) if environ is not None else process_environment(None)
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def interpreter(self) -> str:
        return self.python

    async def _open(self, argv: list[str], payload: bytes) -> None:
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
                pass_fds=lease.inherited(self.python),  # in use while it runs
            )
            assert self.proc.stdin is not None
            self.proc.stdin.write(payload)
            await self.proc.stdin.drain()
            self.proc.stdin.close()
        except (OSError, BrokenPipeError, ConnectionResetError) as error:
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
    """A Dask worker (with its nanny, by default) in the replicated environment.

    Its spec's options are flat, as ``SpecCluster`` reads them (``nthreads``,
    ``memory_limit``): the process's own (``python``, ``environ``, ``cwd``, ``nanny``)
    and every other one for Dask's ``Nanny`` or ``Worker``.
    """

    def __init__(
        self,
        scheduler: str,
        *,
        python: str,
        name: str | int | None = None,
        nanny: bool = True,
        environ: Mapping[str, str] | None = None,
        cwd: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(
            python=python, spec=worker_spec(name, nanny=nanny, options=options),
            args=(scheduler,), name=str(name), environ=environ, cwd=cwd,
        )
        self.options = options


FORKSERVER_VARIABLE = "DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD"

# ``SPEC_MAIN`` that starts its forkserver first, so that the forkserver imports
# ``distributed`` while this process does (not after), and, once its nannies closed their
# workers, stops the forkserver and waits for it: a forkserver left to exit on its own
# would be an orphan (a zombie where the init process does not reap, as in many
# containers). Runs with only ``distributed``.
# Closing is on the path of every cluster's close: the forkserver, whose workers are gone
# by then, is killed rather than left to tear its interpreter down, and this process ends
# with ``os._exit`` once every exit handler ran (registered first, ``end`` runs last), so
# that neither pays for unloading ``distributed`` module by module.
NANNIES_MAIN = f"""
import atexit, os, signal, sys
status = 1
def end():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(status)
atexit.register(end)
from multiprocessing import forkserver
if os.environ.get("{FORKSERVER_VARIABLE}") == "forkserver":
    forkserver.set_forkserver_preload(["distributed"])
    forkserver.ensure_running()
{SPEC_RUNNER}
try:
    serve()
    status = 0
except SystemExit as done:
    status = done.code if isinstance(done.code, int) else int(done.code is not None)
    raise
finally:
    server = forkserver._forkserver
    pid = getattr(server, "_forkserver_pid", None)
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
    stop = getattr(server, "_stop", None)
    if stop is not None:
        stop()
"""


def forkserver_environment(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with nannies starting workers by forkserver, unless Dask is set otherwise.

    Only Dask's default (``spawn``) is replaced: a method the user chose stays. The
    variables a nanny sets before it starts a worker (``distributed.nanny.pre-spawn-environ``,
    ``PYTHONHASHSEED``) are set from the start: a forkserver started early has them then.
    """
    result = dict(env)
    method = dask.config.get("distributed.worker.multiprocessing-method", default="spawn")
    if method != "spawn" or "forkserver" not in multiprocessing.get_all_start_methods():
        return result
    result[FORKSERVER_VARIABLE] = "forkserver"
    config = dask.config.get("distributed.nanny.pre-spawn-environ", default=None) or {}
    # as distributed.nanny computes them: a variable already set wins over the config
    pre_spawn = {k: result.get(k, str(v)) for k, v in config.items() if v is not None}
    if pre_spawn.get("PYTHONHASHSEED") in (None, "0"):
        pre_spawn["PYTHONHASHSEED"] = "6640"  # distributed's own choice, for consistent hashing
    result.update(pre_spawn)
    return result


class EnvNannies(WorkerRole, EnvProcess):
    """One process of the environment running the nannies of several workers.

    Ready once every worker registered. Each nanny listens on a port given in advance,
    so that one worker can be closed (``scale()`` down) without the others.
    """

    role = "workers"

    def __init__(
        self,
        scheduler: str,
        *,
        python: str,
        workers: Mapping[Any, Mapping[str, Any]],
        environ: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> None:
        spec = {
            str(name): worker_spec(name, nanny=True, options=options)
            for name, options in workers.items()
        }
        super().__init__(
            python=python, spec=spec, args=(scheduler,),
            environ=forkserver_environment(environ or os.environ), cwd=cwd,
            name=", ".join(str(name) for name in workers),
        )
        self.workers = {name: dict(options) for name, options in workers.items()}
        self.addresses = {
            name: f"{listen_scheme(options)}://{options['host']}:{options['port']}"
            for name, options in workers.items()
        }
        security = next((o["security"] for o in workers.values() if o.get("security")), None)
        self._connection_args = (
            security.get_connection_args("client") if security is not None else {})
        self._open_workers = set(workers)
        self._starting: asyncio.Future[None] | None = None
        self._terminating: set[asyncio.Future[None]] = set()

    def command(self) -> list[str]:
        return [self.interpreter, "-c", NANNIES_MAIN, *self.args]

    async def _stop(self) -> None:
        """The process alone first: its nannies close their workers, then it stops its
        forkserver (a signal to the whole group would kill the forkserver under them)."""
        proc = self.proc
        if proc is not None and proc.returncode is None:
            try:
                proc.send_signal(signal.SIGTERM)
                await asyncio.wait_for(proc.wait(), STOP_GRACE)
            except (ProcessLookupError, asyncio.TimeoutError):
                pass
        await super()._stop()

    async def _until_ready(self) -> str:
        registered = 0
        while True:
            line = await self._next_line()
            if self.ready_text in line:
                registered += 1
                if registered == len(self.addresses):
                    return line

    async def start_once(self) -> None:
        """Start the process the first time any of its workers is awaited."""
        if self._starting is None:
            self._starting = asyncio.ensure_future(self.start())
        await asyncio.shield(self._starting)

    async def close(self) -> None:
        """Cancel a start still under way first: it would open the process after this."""
        starting = self._starting
        if starting is not None and not starting.done():
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
        await super().close()

    async def release(self, name: Any) -> None:
        """Close one worker: its nanny alone, or the whole process once it is the last."""
        self._open_workers.discard(name)
        if not self._open_workers:
            # the nannies still being terminated one by one go with the process: a call
            # to a nanny of a process closing under it would wait out its timeout
            for terminating in self._terminating:
                terminating.cancel()
            await self.close()
            return
        if self.proc is None or self.proc.returncode is not None:
            return
        terminating = asyncio.ensure_future(self._terminate(name))
        self._terminating.add(terminating)
        try:
            await asyncio.wait({terminating})
        finally:
            self._terminating.discard(terminating)

    async def _terminate(self, name: Any) -> None:
        try:
            async with rpc(self.addresses[name], connection_args=self._connection_args) as nanny:
                await asyncio.wait_for(nanny.terminate(reason="cluster-scale"), STOP_GRACE)
        except Exception as error:  # already gone, or closed as it answered
            logger.debug("nanny of worker %s: %s", name, error)


class SharedWorker(WorkerFacts, ProcessInterface):
    """One worker whose nanny runs in an ``EnvNannies`` process shared with others."""

    def __init__(self, nannies: EnvNannies, name: Any) -> None:
        super().__init__()
        self.nannies = nannies
        self.name = name
        self.options = nannies.workers[name]

    @property
    def proc(self) -> asyncio.subprocess.Process | None:
        """The shared process (every worker of it names the same one)."""
        return self.nannies.proc

    async def start(self) -> None:
        await self.nannies.start_once()
        self.address = self.nannies.addresses[self.name]
        await super().start()

    async def close(self) -> None:
        await self.nannies.release(self.name)
        await super().close()
