"""The adapter over SpecCluster's private API, against the installed distributed.

A SpecCluster with Dask's own Scheduler and Worker in this process (no subprocess): if a
release of distributed changes the private steps the adapter relies on, this fails here
rather than somewhere in a launch.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from distributed import Scheduler, Worker
from distributed.core import Status
from distributed.deploy.spec import ProcessInterface

from packsync.errors import LaunchError
from packsync.launch.spec_internals import SpecClusterInternals

SCHEDULER = {"cls": Scheduler,
             "options": {"host": "127.0.0.1", "port": 0, "dashboard": False,
                         "dashboard_address": "127.0.0.1:0"}}


class Recorded(SpecClusterInternals):
    """Starts worker "early" itself, as packsync's early start does, and records each hook."""

    def __init__(self, scheduler: dict[str, Any] = SCHEDULER) -> None:
        self.calls: list[str] = []
        self.early: Worker | None = None
        super().__init__(
            scheduler=scheduler,
            workers={"early": {"cls": Worker, "options": {"nthreads": 1}},
                     "later": {"cls": Worker, "options": {"nthreads": 1}}},
            worker={"cls": Worker, "options": {"nthreads": 1}},
            asynchronous=True,
        )

    async def _launch(self) -> None:
        self.calls.append("launch")
        await self._dask_start()
        self.early = await Worker(self.scheduler.address, nthreads=1, name="early")
        self._adopt_workers({"early": self.early})

    async def _match_workers(self) -> None:
        self.calls.append("match")
        await self._dask_match_workers()

    async def _shut_down(self) -> None:
        self.calls.append("close")
        await self._dask_close()

    def _summary_html(self) -> str:
        return "<p>ours</p>"


def test_hooks_run_in_order_and_adopted_workers_are_the_clusters_own():
    async def check() -> dict[str, Any]:
        async with Recorded() as cluster:
            workers = dict(cluster.workers)
            html = cluster._repr_html_()
            cluster.scale(1)  # SpecCluster closes a worker by name, adopted or not
            await cluster._correct_state()
            remaining = set(cluster.workers)
            early = cluster.early
        return {"workers": workers, "early": early, "calls": cluster.calls, "html": html,
                "remaining": remaining, "status": cluster.status}

    out = asyncio.run(check())
    assert out["workers"]["early"] is out["early"]  # adopted: not started a second time
    assert isinstance(out["workers"]["later"], Worker)  # SpecCluster started the other
    assert out["calls"][0] == "launch" and out["calls"][1] == "match"
    assert "close" in out["calls"]  # (SpecCluster's close matches the workers to none after)
    assert out["html"].startswith("<p>ours</p>") and "Recorded" in out["html"]
    assert len(out["remaining"]) == 1
    assert out["early"].status == Status.closed  # closed with the cluster
    assert out["status"] == Status.closed


class FailingScheduler(ProcessInterface):
    async def start(self) -> None:
        raise LaunchError("the Dask scheduler exited before it was ready", hint="its log")


def test_a_packsync_error_of_the_scheduler_is_raised_as_itself():
    async def check() -> None:
        await Recorded(scheduler={"cls": FailingScheduler, "options": {}})

    with pytest.raises(LaunchError, match="exited before it was ready"):
        asyncio.run(check())


def test_close_failed_marks_the_cluster_and_closes_it():
    async def check() -> tuple[Status, list[str]]:
        cluster = await Recorded()
        await cluster._close_failed()
        return cluster.status, cluster.calls

    status, calls = asyncio.run(check())
    assert status == Status.closed and "close" in calls
