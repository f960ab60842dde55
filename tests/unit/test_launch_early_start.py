"""Which first workers start before the scheduler, whose nannies share a process, and names."""

from __future__ import annotations

import asyncio
import pickle
import socket

import dask.config

from packsync.launch import layout
from packsync.launch.early_start import (
    EarlyWorkers,
    can_share_nannies,
    free_port,
    shared_nannies,
    start_early,
)
from packsync.launch.local import EnvWorker
from packsync.launch.processes import SPEC_MAIN, SchedulerRole


def local_workers(n: int, **extra):
    template = layout.worker_template(threads=1, memory_limit="auto", host="127.0.0.1",
                                      nanny=True, extra=extra or None)
    workers = layout.first_workers(template, n)
    options = {"python": "/env/bin/python", "environ": {"PATH": "/usr/bin"}, "cwd": "/work"}
    for spec in workers.values():
        spec["options"].update(options)
    return workers


def test_first_local_workers_share_one_nanny_process():
    workers = local_workers(2)
    assert can_share_nannies(workers)
    nannies = shared_nannies(workers, "tcp://127.0.0.1:8786")
    assert nannies is not None
    assert nannies.python == "/env/bin/python" and nannies.cwd == "/work"
    assert nannies.name == "0, 1" and nannies.args == ("tcp://127.0.0.1:8786",)
    assert nannies.describe() == "the Dask workers 0, 1"
    # each nanny listens on a port of its own, so that one can be closed alone
    ports = {a.rsplit(":", 1)[1] for a in nannies.addresses.values()}
    assert len(ports) == 2 and all(a.startswith("tcp://127.0.0.1:")
                                   for a in nannies.addresses.values())
    # the spec goes to the process's stdin, pickled: nothing of it on the command line
    command = nannies.command()
    assert command[:2] == ["/env/bin/python", "-c"] and command[3:] == ["tcp://127.0.0.1:8786"]
    spec = pickle.loads(nannies.payload())
    assert spec["0"]["cls"] == "distributed.Nanny" and spec["1"]["opts"]["name"] == 1
    assert "python" not in spec["0"]["opts"] and "environ" not in spec["0"]["opts"]


def test_nannies_are_not_shared_when_they_cannot_be():
    assert not can_share_nannies(local_workers(2, port=9000))  # the user's nanny port
    without_nanny = local_workers(2)
    without_nanny[1]["options"]["nanny"] = False
    assert not can_share_nannies(without_nanny)
    other = local_workers(2)
    other[0] = {"cls": "distributed.Nanny", "options": {}}  # not one of ours
    assert not can_share_nannies(other)
    with dask.config.set({"packsync.shared-nannies": False}):
        assert not can_share_nannies(local_workers(2))
        assert shared_nannies(local_workers(2), "tcp://127.0.0.1:8786") is None


def test_no_early_start_when_the_scheduler_address_is_not_ours_to_choose():
    async def check() -> None:
        for options, kwargs, workers in [
            ({"host": "127.0.0.1", "port": 0}, {"scheduler_started": True}, local_workers(1)),
            ({"host": "127.0.0.1", "port": 0}, {"remote_scheduler": True}, local_workers(1)),
            ({"host": "127.0.0.1", "port": 8786}, {}, local_workers(1)),  # the user's port
            ({"host": "127.0.0.1", "port": 0}, {}, {}),  # no worker yet
        ]:
            given = dict(options)
            early = start_early(given, workers, **{
                "scheduler_started": False, "remote_scheduler": False, **kwargs})
            assert len(early) == 0 and given == options
            assert await early.ready() == {}
            await early.cancel()

    asyncio.run(check())


def test_free_port_is_free():
    port = free_port("127.0.0.1")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))


def test_early_workers_report_the_first_failure_and_cancel_the_rest():
    class Starting:
        closed = False

        async def close(self) -> None:
            self.closed = True

    async def check() -> None:
        async def fails() -> None:
            raise OSError("no such interpreter")

        ok, bad = Starting(), Starting()
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        early = EarlyWorkers({0: (ok, done), 1: (bad, asyncio.ensure_future(fails()))})
        try:
            await early.ready()
        except OSError as error:
            assert "no such interpreter" in str(error)
        else:
            raise AssertionError("a failed start must raise")
        pending = asyncio.ensure_future(asyncio.sleep(3600))
        waiting = EarlyWorkers({0: (ok, pending)})
        await waiting.cancel()
        assert pending.cancelled() and ok.closed

    asyncio.run(check())


def test_processes_are_named_as_errors_name_them():
    worker = EnvWorker("tcp://127.0.0.1:8786", python="/env/bin/python", name=3, nthreads=2)
    assert worker.describe() == "the Dask worker 3"
    assert worker.command() == ["/env/bin/python", "-c", SPEC_MAIN, "tcp://127.0.0.1:8786"]
    assert pickle.loads(worker.payload()) == {3: {"cls": "distributed.Nanny", "opts": {
        "nthreads": 2, "name": 3}}}

    class Scheduler(SchedulerRole):
        interpreter = "/env/bin/python"

        @property
        def location(self) -> str:
            return "alice@node1"

    scheduler = Scheduler(spec={})
    assert scheduler.describe() == "the Dask scheduler on alice@node1"
    scheduler.on_ready("2026-01-01 - distributed.scheduler - INFO -   Scheduler at: "
                       "tcp://10.0.0.1:8786")
    assert scheduler.address == "tcp://10.0.0.1:8786"
