"""The archive's fan-out: a constant number of copies from the client, O(log N) rounds, and
a peer that dies while serving does not stall anybody."""

from __future__ import annotations

import asyncio
import math

import pytest

from packsync.launch.hosts.fanout import fan_out


class PeerDown(Exception):
    pass


class World:
    """Hosts where every transfer takes one tick of a virtual clock (no wall time: the
    clock moves only once everything that can start has started); some hosts die once
    they serve, some fail themselves."""

    def __init__(self, dying: frozenset[str] = frozenset(), broken: frozenset[str] = frozenset()):
        self.dying = dying
        self.broken = broken
        self.rounds: dict[str, int] = {}
        self.now = 0
        self.ticked: asyncio.Event | None = None

    async def clock(self) -> None:
        while True:
            for _ in range(50):  # let every finished transfer start the next ones
                await asyncio.sleep(0)
            self.now += 1
            ticked, self.ticked = self.ticked, asyncio.Event()
            if ticked is not None:
                ticked.set()

    async def _transfer(self) -> None:
        start = self.now
        while self.now < start + 1:
            if self.ticked is None:
                self.ticked = asyncio.Event()
            await self.ticked.wait()

    async def send(self, host: str) -> str:
        await self._transfer()
        if host in self.broken:
            raise RuntimeError(f"{host}: disk full")
        self.rounds[host] = self.now
        return host

    async def fetch(self, host: str, peer: str) -> str:
        await self._transfer()
        if peer in self.dying:
            raise PeerDown(peer)
        if host in self.broken:
            raise RuntimeError(f"{host}: disk full")
        self.rounds[host] = self.now
        return host

    async def serve(self, host: str) -> str:
        return host


def run(world: World, hosts: list[str], **options: int):
    async def main():
        clock = asyncio.ensure_future(world.clock())
        try:
            return await fan_out(hosts, send=world.send, fetch=world.fetch, serve=world.serve,
                                 blames_peer=lambda e: isinstance(e, PeerDown), **options)
        finally:
            clock.cancel()

    return asyncio.run(main())


@pytest.mark.parametrize("count", [1, 2, 5, 16, 64])
def test_the_client_sends_two_copies_and_holders_triple_each_round(count):
    world = World()
    hosts = [f"h{n}" for n in range(count)]
    result = run(world, hosts)
    assert sorted(result.ready) == sorted(hosts) and not result.failed
    assert result.direct_sends == min(2, count) and result.peer_sends == count - min(2, count)
    # holders triple each round (each serves two at a time): about log3(N) rounds
    assert max(world.rounds.values()) <= 1 + math.ceil(math.log(count, 3))
    assert set(result.serving) <= set(hosts)


def test_a_peer_that_dies_is_replaced_and_nobody_waits_for_it():
    world = World(dying=frozenset({"h0"}))  # the first holder dies as soon as it serves
    hosts = [f"h{n}" for n in range(6)]
    result = run(world, hosts)
    assert sorted(result.ready) == hosts and not result.failed
    assert result.direct_sends >= 2  # the client took over until another holder served


def test_a_host_that_fails_itself_is_reported_and_the_others_go_on():
    world = World(broken=frozenset({"h3"}))
    hosts = [f"h{n}" for n in range(6)]
    result = run(world, hosts)
    assert sorted(result.ready) == [h for h in hosts if h != "h3"]
    [(host, error)] = result.failed
    assert host == "h3" and "disk full" in str(error)


def test_fewer_direct_copies_when_asked():
    world = World()
    result = run(world, [f"h{n}" for n in range(8)], direct=1)
    assert result.direct_sends == 1 and len(result.ready) == 8


def test_hosts_that_cannot_reach_each_other_get_it_from_the_client():
    world = World(dying=frozenset(f"h{n}" for n in range(10)))  # every peer is unreachable
    hosts = [f"h{n}" for n in range(10)]
    result = run(world, hosts)
    assert sorted(result.ready) == hosts and not result.failed
    assert result.direct_sends <= len(hosts) + 1  # N copies: slow, but the launch works


def test_a_host_that_built_the_archive_serves_everybody_and_the_client_sends_nothing():
    world = World()
    hosts = [f"h{n}" for n in range(7)]
    result = run(world, hosts, direct=0, holders=[("builder", "builder")])
    assert sorted(result.ready) == hosts and result.direct_sends == 0
    assert max(world.rounds.values()) <= 1 + math.ceil(math.log(8, 3))
