"""The first workers, started while the scheduler starts, on an address fixed in advance.

Python start-up dominates a warm launch; workers retry connecting until the scheduler
listens, so both start-ups overlap instead of adding up. On this machine the first
workers' nannies share one process (``EnvNannies``, see ``packsync.launch.local``).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping
from typing import Any

from distributed.deploy.spec import ProcessInterface

from packsync import config
from packsync.launch.local import EnvNannies, EnvWorker, SharedWorker
from packsync.launch.processes import dask_options, listen_scheme


class EarlyWorkers:
    """Workers being started before the scheduler is up, by name."""

    def __init__(self, starting: Mapping[Any, tuple[ProcessInterface, asyncio.Future[Any]]]):
        self.starting = dict(starting)

    def __len__(self) -> int:
        return len(self.starting)

    async def ready(self) -> dict[Any, ProcessInterface]:
        """The workers once all have started; the first failure if one did not."""
        results = await asyncio.gather(
            *(t for _, t in self.starting.values()), return_exceptions=True
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise failures[0]
        return {name: worker for name, (worker, _) in self.starting.items()}

    async def cancel(self) -> None:
        """Stop them all: a worker still starting would open its process after the
        cluster closed and outlive it."""
        for _, starting in self.starting.values():
            starting.cancel()
        await asyncio.gather(*(t for _, t in self.starting.values()), return_exceptions=True)
        await asyncio.gather(
            *(w.close() for w, _ in self.starting.values()), return_exceptions=True
        )


def start_early(
    scheduler_options: dict[str, Any],
    worker_spec: Mapping[Any, Mapping[str, Any]],
    *,
    scheduler_started: bool,
    remote_scheduler: bool,
) -> EarlyWorkers:
    """Start ``worker_spec``'s workers now, for a scheduler on a port chosen here.

    Not when the scheduler runs on a host (its port is chosen there), already runs, or
    listens on a port of the user's. Sets ``scheduler_options["port"]``.
    """
    if remote_scheduler or scheduler_started:
        return EarlyWorkers({})
    if scheduler_options.get("port") != 0 or not worker_spec:
        return EarlyWorkers({})
    scheduler_options["port"] = free_port(scheduler_options["host"])
    address = f"{listen_scheme(scheduler_options)}://{scheduler_options['host']}:{scheduler_options['port']}"
    nannies = shared_nannies(worker_spec, address)
    starting: dict[Any, tuple[ProcessInterface, asyncio.Future[Any]]] = {}
    for name, spec in worker_spec.items():
        worker: ProcessInterface = (
            SharedWorker(nannies, name) if nannies is not None
            else spec["cls"](address, **{"name": name, **spec["options"]})
        )
        starting[name] = (worker, asyncio.ensure_future(worker))
    return EarlyWorkers(starting)


def shared_nannies(
    worker_spec: Mapping[Any, Mapping[str, Any]], scheduler: str
) -> EnvNannies | None:
    """One process for the nannies of the first local workers.

    Not when asked otherwise (``packsync.shared-nannies: false``), for workers without a
    nanny, on hosts, or with a nanny port of the user's.
    """
    if not can_share_nannies(worker_spec):
        return None
    first = next(iter(worker_spec.values()))["options"]
    workers = {}
    for name, spec in worker_spec.items():
        opts = dask_options(spec["options"])
        opts["host"] = opts.get("host") or "127.0.0.1"
        opts["port"] = free_port(opts["host"])
        workers[name] = opts
    return EnvNannies(
        scheduler, python=first["python"], workers=workers, environ=first.get("environ"),
        cwd=first.get("cwd"),
    )


def can_share_nannies(worker_spec: Mapping[Any, Mapping[str, Any]]) -> bool:
    """Whether every worker is a local one with a nanny on a port of our choosing."""
    if not config.shared_nannies():
        return False
    return all(
        s["cls"] is EnvWorker and s["options"].get("nanny", True)
        and not s["options"].get("port")
        for s in worker_spec.values()
    )


def free_port(host: str) -> int:
    """A port nothing listens on now (the scheduler or a nanny binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port
