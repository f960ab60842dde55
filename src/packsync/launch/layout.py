"""What ``Cluster``'s arguments make of its processes, before anything runs.

How many workers with how many threads, and the ``SpecCluster`` specs of the scheduler
and of each worker: a scheduler in this process (Dask's own ``Scheduler``) or one of
the environment's, and workers started with the environment's interpreter. The
interpreter, environment variables and working directory every process gets are known
once the environment is ready (``with_process_options``).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dask.system import CPU_COUNT
from distributed.deploy.utils import nprocesses_nthreads
from distributed.scheduler import Scheduler
from distributed.worker_memory import parse_memory_limit

from packsync.launch.hosts.placement import HostsLaunch
from packsync.launch.local import EnvScheduler, EnvWorker, process_environment

logger = logging.getLogger(__name__)

Spec = dict[str, Any]  # SpecCluster's {"cls": ..., "options": {...}}


def workers_and_threads(
    n_workers: int | None, threads_per_worker: int | None, *, cpu_count: int = CPU_COUNT
) -> tuple[int, int]:
    """As ``LocalCluster`` has it: what is not given is derived from the cores, threads
    rounded up (over-committing threads rather than leaving cores idle)."""
    if n_workers is not None and (not isinstance(n_workers, int) or n_workers < 0):
        raise ValueError(f"n_workers={n_workers!r}: give a number of workers, 0 or more")
    if threads_per_worker is not None and (
            not isinstance(threads_per_worker, int) or threads_per_worker < 0):
        raise ValueError(f"threads_per_worker={threads_per_worker!r}: give a number of "
                         "threads, 1 or more")
    if n_workers is None and threads_per_worker is None:
        workers, threads = nprocesses_nthreads(cpu_count)
        return int(workers), int(threads)
    if n_workers is None:
        assert threads_per_worker is not None
        return max(1, cpu_count // (threads_per_worker or 1)), threads_per_worker
    if threads_per_worker is None:
        return n_workers, max(1, math.ceil(cpu_count / max(n_workers, 1)))
    return n_workers, threads_per_worker


def memory_per_worker(memory_limit: str | float | int | None, n_workers: int, *,
                      local: bool) -> str | float | int | None:
    """``"auto"`` on this machine is its memory shared by the workers, as ``LocalCluster``
    has it (not each worker's share of the cores, which over-commits when threads do);
    on SSH hosts each worker works out its own."""
    if memory_limit == "auto" and local and n_workers:
        return parse_memory_limit("auto", 1, n_workers, logger=logger)
    return memory_limit


def on_hosts(
    hosts: HostsLaunch, n_workers: int | None, threads_per_worker: int | None, host: str
) -> tuple[int, int, str]:
    """SSH hosts' defaults: one worker per host, one thread each, and a scheduler address
    every host reaches (unless the user chose one)."""
    n_workers = len(hosts.specs) if n_workers is None else n_workers
    if host == "127.0.0.1":
        host = hosts.scheduler_host()
    return n_workers, threads_per_worker or 1, host


def scheduler_in_process(scheduler_process: bool | None, *, remote: bool, default: bool) -> bool:
    """Whether the scheduler runs in this process: never on a host, else unless asked."""
    if remote:
        return False
    return not bool(scheduler_process if scheduler_process is not None else default)


def scheduler_spec(options: dict[str, Any], *, in_process: bool) -> Spec:
    """Dask's ``Scheduler`` here, or one in the environment (it then unpickles graphs too).

    ``options`` is shared, not copied: the early start fixes its port later.
    """
    if in_process:
        return {"cls": Scheduler, "options": options}
    return {"cls": EnvScheduler, "options": {"options": options}}


def scheduler_options(
    host: str, dashboard_address: str | None, extra: Mapping[str, Any] | None
) -> dict[str, Any]:
    options: dict[str, Any] = {"host": host, "port": 0, "dashboard_address": dashboard_address}
    options.update(extra or {})
    return options


def worker_template(
    *,
    threads: int,
    memory_limit: str | float | int | None,
    host: str,
    nanny: bool,
    extra: Mapping[str, Any] | None,
) -> Spec:
    """The spec of one worker in the environment (``new_spec``, which ``scale()`` copies).

    Its options are flat, as ``SpecCluster`` reads ``nthreads`` and ``memory_limit`` to
    ``scale(cores=, memory=)`` and ``adapt()`` by them.
    """
    options: dict[str, Any] = {
        "nanny": nanny,
        "nthreads": threads,
        "memory_limit": memory_limit,
        "host": host,
        "dashboard_address": None,
    }
    options.update(extra or {})
    return {"cls": EnvWorker, "options": options}


def first_workers(template: Spec, count: int) -> dict[int, Spec]:
    """``count`` workers named 0, 1, ... after ``template`` (each with options of its own)."""
    return {i: {"cls": template["cls"], "options": dict(template["options"])}
            for i in range(count)}


def process_options(python: Path, code_link: Path | None) -> dict[str, Any]:
    """What every local process of the cluster is started with: the environment's own
    interpreter, the client's environment variables with the live code link on
    ``PYTHONPATH``, and the client's working directory."""
    return {"python": str(python), "environ": process_environment(code_link), "cwd": os.getcwd()}


def with_process_options(
    options: Mapping[str, Any],
    *,
    scheduler: Spec,
    template: Spec,
    workers: Mapping[Any, Spec],
) -> None:
    """Give ``options`` to the workers' specs and to a scheduler of the environment's."""
    if scheduler["cls"] is EnvScheduler:
        scheduler["options"].update(options)
    template["options"].update(options)
    for spec in workers.values():
        spec["options"].update(options)
