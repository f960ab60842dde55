"""One Dask scheduler or worker process, wherever it runs, as ``SpecCluster`` drives it.

``DaskProcess`` holds what every such process shares: the command line (``SPEC_MAIN``,
which starts what the spec names as ``dask spec`` does) and the spec itself, pickled and
written to the process's stdin (so a ``Security`` object, a plugin or any option that is
not JSON reaches it, and no option, credentials included, is ever on a command line),
waiting for the line that says it is ready (within ``START_TIMEOUT``, else one
``StartTimeoutError``, or ``ProcessStartError`` if it exited, with the tail of its own
log), reading its log afterwards so it never blocks on a full pipe, and stopping it on
close. A subclass says only how it opens
the process, reads one line of its log and stops it: a local process group
(``packsync.launch.local``) or a supervised process on an SSH host (``packsync.launch.hosts``).
The scheduler and worker roles (ready line, address, spec) are mixins on top.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import pickle
from collections.abc import Mapping
from typing import Any

import cloudpickle
from distributed.deploy.spec import ProcessInterface

from packsync.errors import LaunchError, ProcessStartError, StartTimeoutError

logger = logging.getLogger(__name__)

START_TIMEOUT = 120.0
LOG_LINES = 200

# What ``python -m distributed.cli.dask_spec`` does, with the spec read (pickled) from
# stdin instead of JSON on the command line: start every server it names with the
# command line's arguments (the scheduler's address), close them on SIGINT/SIGTERM, and
# return once all finished. ``SPEC_RUNNER`` defines ``serve()``; runs with only
# ``distributed``.
SPEC_RUNNER = """
import asyncio, pickle, signal, sys
def serve():
    from distributed.compatibility import asyncio_run
    from distributed.config import get_loop_factory
    from distributed.deploy.spec import init_spec
    spec = pickle.load(sys.stdin.buffer)
    async def run():
        servers = init_spec(spec, *sys.argv[1:])
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async def finish():
            await asyncio.gather(*servers.values())
            await asyncio.gather(*(s.finished() for s in servers.values()))
        finished = asyncio.ensure_future(finish())
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait([finished, stopped], return_when=asyncio.FIRST_COMPLETED)
        if stopped.done():
            await asyncio.gather(*(s.close() for s in servers.values()))
        else:
            stopped.cancel()
            finished.result()
    asyncio_run(run(), loop_factory=get_loop_factory())
"""
SPEC_MAIN = SPEC_RUNNER + "serve()\n"


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

    async def _open(self, argv: list[str], payload: bytes) -> None:
        """Start ``argv`` with ``payload`` on its stdin; a failure to start is a
        ``LaunchError`` naming the cause."""
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
        """The command line: the interpreter, ``SPEC_MAIN`` and the scheduler's address."""
        return [self.interpreter, "-c", SPEC_MAIN, *self.args]

    def payload(self) -> bytes:
        """The spec, pickled for the process's stdin (by value where need be: a plugin
        class of the client's ``__main__`` reaches the worker too)."""
        try:
            data: bytes = cloudpickle.dumps(servers(self.spec), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as error:
            raise LaunchError(
                f"an option of {self.describe()} cannot be sent to it: {error}",
                hint="worker_options and scheduler_options must be picklable",
                **{k: v for k, v in self._error_fields().items() if k != "hint"},
            ) from None
        return data

    async def start(self) -> None:
        await self._open(self.command(), self.payload())
        try:
            line = await asyncio.wait_for(self._until_ready(), START_TIMEOUT)
        except (asyncio.TimeoutError, EOFError) as error:
            await self._stop()
            exited = isinstance(error, EOFError)
            problem = "exited before it was ready" if exited else (
                f"was not ready within {START_TIMEOUT:.0f} s"
            )
            failure = ProcessStartError if exited else StartTimeoutError
            raise failure(
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


class WorkerFacts:
    """What Dask's own ``Nanny`` and ``Worker`` expose in ``cluster.workers``, besides the
    ``address`` (the nanny's, or the worker's without one) once it runs: the worker's
    address, ``nthreads``, ``memory_limit``, the Dask ``options`` it was started with and
    its ``process`` (with its ``pid``)."""

    options: Mapping[str, Any] = {}
    worker_address: str | None = None

    @property
    def nthreads(self) -> int | None:
        value = self.options.get("nthreads")
        return int(value) if value is not None else None

    @property
    def memory_limit(self) -> Any:
        return self.options.get("memory_limit")

    @property
    def process(self) -> Any:
        """The process the worker runs in (``pid``), while it runs."""
        return getattr(self, "proc", None)


class WorkerRole(WorkerFacts, DaskProcess):
    """A worker (with its nanny, by default): ready once registered with the scheduler."""

    ready_text = "Registered to:"
    role = "worker"

    async def _next_line(self) -> str:
        line = await super()._next_line()
        self.read_addresses(line)
        return line

    def read_addresses(self, line: str) -> None:
        """The nanny's and the worker's addresses, from the lines that announce them."""
        for text, nanny in (("Start Nanny at:", True), ("Start worker at:", False)):
            if text in line:
                address = line.split(text, 1)[1].strip().strip("'\"")
                if nanny:
                    self.address = address
                else:
                    self.worker_address = address
                    if not self.spec_uses_nanny():
                        self.address = address

    def spec_uses_nanny(self) -> bool:
        return all(s.get("cls") == NANNY for s in servers(self.spec).values())


NANNY = "distributed.Nanny"


def servers(spec: Mapping[str, Any]) -> dict[Any, Any]:
    """``{name: spec}`` of the servers a process runs (one spec, or one per name)."""
    if "cls" in spec:
        return {spec.get("opts", {}).get("name", 0): dict(spec)}
    return dict(spec)


def scheduler_spec(options: Mapping[str, Any]) -> dict[str, Any]:
    """The ``dask spec`` of a scheduler with these options."""
    return {"cls": "distributed.Scheduler", "opts": dict(options)}


# Options of a worker's spec in ``SpecCluster`` that say how its process starts, not
# what Dask's ``Nanny`` or ``Worker`` is given.
PROCESS_KEYS = frozenset({"python", "environ", "cwd", "nanny", "target"})


def dask_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options of a worker's ``SpecCluster`` spec that go to Dask's ``Nanny``/``Worker``."""
    return {k: v for k, v in options.items() if k not in PROCESS_KEYS}


def listen_scheme(options: Mapping[str, Any]) -> str:
    """The scheme a server with these options listens on (``tcp`` unless told)."""
    return str(options.get("protocol") or "tcp").split("://", 1)[0]


def worker_spec(
    name: str | int | None, *, nanny: bool, options: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The ``dask spec`` of a worker (a nanny and its worker by default) named ``name``."""
    cls = NANNY if nanny else "distributed.Worker"
    return {"cls": cls, "opts": {**(options or {}), "name": name}}
