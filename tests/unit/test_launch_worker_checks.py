"""When a cluster's workers are checked, and how their hosts are named."""

from __future__ import annotations

import asyncio

from packsync.launch.hosts.placement import HostsLaunch
from packsync.launch.verify import Verification
from packsync.launch.worker_checks import WorkerChecks, host_namer
from packsync.lock.lockfile import Lock

LOCK = Lock(text="", digest="0" * 64, python="3.11.7", local_wheels=(), versions={})


def test_host_names_of_workers():
    assert host_namer(None, {})(0) == "this machine"
    hosts = HostsLaunch(["alice@10.0.0.1"])
    specs = {0: {"options": {}}}
    name = host_namer(hosts, specs)
    assert name(0) == "this machine"  # not placed on a host
    assert name(7) == "unknown host"  # retired already
    specs[7] = {"options": {}}  # the namer sees workers added later
    assert name(7) == "this machine"


def test_no_check_when_off_or_before_the_cluster_runs():
    async def check() -> None:
        off = WorkerChecks(enabled=False, fail_on="critical")
        # a comm that cannot be used: any attempt to check would fail loudly
        assert await off.refused_joined(LOCK, object(), str) == []
        await off.at_launch(LOCK, object(), str)
        assert off.verifier is None and off.verification == Verification()

        on = WorkerChecks(enabled=True, fail_on="warning")
        await on.at_launch(None, object(), str)  # not prepared yet
        assert await on.refused_joined(LOCK, None, str) == []  # no scheduler yet
        assert on.verifier is None

    asyncio.run(check())


def test_a_report_that_cannot_be_asked_for_retires_nobody(caplog):
    class NoScheduler:
        async def identity(self) -> dict[str, object]:
            raise OSError("scheduler gone")

    async def check() -> list[object]:
        checks = WorkerChecks(enabled=True, fail_on="critical")
        return await checks.refused_joined(LOCK, NoScheduler(), str)

    assert asyncio.run(check()) == []
    assert "could not verify the workers that joined" in caplog.text
