"""An environment's archive reaching many hosts without the client's uplink carrying N copies.

The client sends the archive to at most ``direct`` hosts itself. Every host that holds
it then serves it to the others (``packsync.hostside.peers``), up to ``per_peer`` at a
time, so the number of holders grows geometrically: N hosts take O(log N) rounds and
the client uploads a constant number of copies. A peer that fails while serving is
dropped and its receivers are served again by another holder, or by the client when no
holder is left, so a host dying mid-launch does not stall the others.

The scheduling is pure: what "send", "fetch from a peer" and "serve" mean is given by
the caller, which makes it testable without hosts.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")  # a host that needs the archive
R = TypeVar("R")  # a host that has it
P = TypeVar("P")  # a serving peer (what receivers are pointed at)

DIRECT = 2  # copies the client sends itself: a constant, whatever the number of hosts
PER_PEER = 2
ATTEMPTS = 3


@dataclass(kw_only=True, slots=True)
class _Source(Generic[R, P]):
    holder: R | None  # None: the client
    peer: P | None
    capacity: int
    busy: int = 0
    alive: bool = True


@dataclass(kw_only=True, slots=True)
class FanOut(Generic[T, R, P]):
    """The outcome: hosts made ready, hosts that failed, peers to stop, client sends."""

    ready: list[R] = field(default_factory=list)
    failed: list[tuple[T, BaseException]] = field(default_factory=list)
    serving: list[P] = field(default_factory=list)
    direct_sends: int = 0
    peer_sends: int = 0


async def fan_out(
    targets: Sequence[T],
    *,
    send: Callable[[T], Awaitable[R]],
    fetch: Callable[[T, P], Awaitable[R]],
    serve: Callable[[R], Awaitable[P]],
    blames_peer: Callable[[BaseException], bool],
    direct: int = DIRECT,
    per_peer: int = PER_PEER,
    attempts: int = ATTEMPTS,
    holders: Sequence[tuple[R, P]] = (),
) -> FanOut[T, R, P]:
    """Make every target ready: from the client (``send``) or a serving peer (``fetch``).

    ``serve(ready_host)`` starts a holder serving; ``blames_peer(error)`` tells a failure
    of the peer (unreachable, altered bytes) from one of the receiving host itself.
    ``holders`` serve from the start (a host that built the archive itself); with
    ``direct=0`` the client sends only when none of them is left.
    """
    scheduler = _Scheduler(targets, send=send, fetch=fetch, serve=serve,
                           blames_peer=blames_peer, direct=direct, per_peer=per_peer,
                           attempts=attempts, holders=holders)
    try:
        await scheduler.run()
    finally:
        await scheduler.stop()
    return scheduler.result


class _Scheduler(Generic[T, R, P]):
    """The state of one fan-out: who holds the archive, who waits, what runs."""

    def __init__(self, targets: Sequence[T], *, send: Callable[[T], Awaitable[R]],
                 fetch: Callable[[T, P], Awaitable[R]], serve: Callable[[R], Awaitable[P]],
                 blames_peer: Callable[[BaseException], bool], direct: int, per_peer: int,
                 attempts: int, holders: Sequence[tuple[R, P]]) -> None:
        self.send, self.fetch, self.serve, self.blames_peer = send, fetch, serve, blames_peer
        self.direct, self.per_peer, self.attempts = direct, per_peer, attempts
        self.result: FanOut[T, R, P] = FanOut()
        self.client: _Source[R, P] = _Source(holder=None, peer=None, capacity=max(1, direct))
        self.sources = [_Source(holder=h, peer=p, capacity=per_peer) for h, p in holders]
        self.pending: deque[tuple[T, int]] = deque((t, 0) for t in targets)
        self.direct_only: deque[tuple[T, int]] = deque()  # peers failed it too often
        self.running: dict[asyncio.Future[Any], tuple[T, int, _Source[R, P]]] = {}
        self.serving: dict[asyncio.Future[Any], R] = {}

    async def run(self) -> None:
        self.assign()
        while self.running or self.direct_only or (self.serving and self.pending):
            done, _ = await asyncio.wait([*self.running, *self.serving],
                                         return_when=asyncio.FIRST_COMPLETED)
            for job in done:
                if job in self.serving:
                    self.started_serving(job, self.serving.pop(job))
                else:
                    self.settled(job)
            self.assign()
        self.result.failed += [(t, RuntimeError("no host or client was left to send it"))
                               for t, _ in [*self.pending, *self.direct_only]]

    def assign(self) -> None:
        """Give waiting hosts to sources with room: holders first, the client last."""
        live = [s for s in self.sources if s.alive]
        while self.direct_only and self.client.busy < self.client.capacity:
            self.start(self.direct_only.popleft(), self.client)
        # past its budget the client sends only when no holder serves or is about to
        client_may_send = self.result.direct_sends < self.direct or not (live or self.serving)
        for source in [*live, *([self.client] if client_may_send else [])]:
            while self.pending and source.busy < source.capacity:
                self.start(self.pending.popleft(), source)

    def start(self, waiting: tuple[T, int], source: _Source[R, P]) -> None:
        target, tries = waiting
        source.busy += 1
        if source.peer is None:
            self.result.direct_sends += 1
            job = asyncio.ensure_future(self.send(target))
        else:
            self.result.peer_sends += 1
            job = asyncio.ensure_future(self.fetch(target, source.peer))
        self.running[job] = (target, tries, source)

    def settled(self, job: asyncio.Future[Any]) -> None:
        target, tries, source = self.running.pop(job)
        source.busy -= 1
        error = job.exception()
        if error is None:
            ready = job.result()
            self.result.ready.append(ready)
            if self.pending:
                self.serving[asyncio.ensure_future(self.serve(ready))] = ready
        elif source.peer is not None and self.blames_peer(error):
            logger.warning("a peer failed while serving the environment (%s); another "
                           "source takes over", error)
            source.alive = False
            # after too many failing peers (hosts that cannot reach each other), the
            # client sends it itself
            queue = self.pending if tries + 1 < self.attempts else self.direct_only
            queue.append((target, tries + 1))
        else:
            self.result.failed.append((target, error))

    def started_serving(self, job: asyncio.Future[Any], holder: R) -> None:
        error = job.exception()
        if error is not None:  # the holder is ready itself; it only cannot serve others
            logger.warning("a host could not serve the environment to others: %s", error)
            return
        peer = job.result()
        self.result.serving.append(peer)
        self.sources.append(_Source(holder=holder, peer=peer, capacity=self.per_peer))

    async def stop(self) -> None:
        """Cancel what still runs; a peer that started serving meanwhile is listed to stop."""
        late = list(self.serving)
        for job in [*self.running, *late]:
            job.cancel()
        await asyncio.gather(*self.running, *late, return_exceptions=True)
        for job in late:
            if not job.cancelled() and job.exception() is None:
                self.result.serving.append(job.result())
