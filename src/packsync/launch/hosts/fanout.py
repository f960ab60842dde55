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
    result: FanOut[T, R, P] = FanOut()
    client: _Source[R, P] = _Source(holder=None, peer=None, capacity=max(1, direct))
    sources: list[_Source[R, P]] = [_Source(holder=h, peer=p, capacity=per_peer)
                                    for h, p in holders]
    pending: deque[tuple[T, int]] = deque((t, 0) for t in targets)
    direct_only: deque[tuple[T, int]] = deque()  # peers failed it too often: the client sends
    running: dict[asyncio.Future[Any], tuple[T, int, _Source[R, P]]] = {}
    serving: dict[asyncio.Future[Any], R] = {}

    def assign() -> None:
        live = [s for s in sources if s.alive]
        # past its budget the client sends only when no holder serves or is about to
        client_may_send = result.direct_sends < direct or not (live or serving)
        while direct_only and client.busy < client.capacity:
            target, tries = direct_only.popleft()
            client.busy += 1
            result.direct_sends += 1
            running[asyncio.ensure_future(send(target))] = (target, tries, client)
        for source in [*live, *([client] if client_may_send else [])]:
            while pending and source.busy < source.capacity:
                target, tries = pending.popleft()
                source.busy += 1
                if source.peer is None:
                    result.direct_sends += 1
                    job = asyncio.ensure_future(send(target))
                else:
                    result.peer_sends += 1
                    job = asyncio.ensure_future(fetch(target, source.peer))
                running[job] = (target, tries, source)

    try:
        assign()
        while running or direct_only or (serving and pending):
            done, _ = await asyncio.wait([*running, *serving],
                                         return_when=asyncio.FIRST_COMPLETED)
            for job in done:
                if job in serving:
                    holder = serving.pop(job)
                    _started_serving(job, holder, sources, result, per_peer)
                    continue
                target, tries, source = running.pop(job)
                source.busy -= 1
                error = job.exception()
                if error is None:
                    ready = job.result()
                    result.ready.append(ready)
                    if pending:
                        serving[asyncio.ensure_future(serve(ready))] = ready
                elif source.peer is not None and blames_peer(error):
                    logger.warning("a peer failed while serving the environment (%s); "
                                   "another source takes over", error)
                    source.alive = False
                    # after too many failing peers (hosts that cannot reach each other),
                    # the client sends it itself
                    (pending if tries + 1 < attempts else direct_only).append(
                        (target, tries + 1))
                else:
                    result.failed.append((target, error))
            assign()
    finally:
        for job in running:
            job.cancel()
        late = list(serving)
        for job in late:
            job.cancel()
        await asyncio.gather(*running, *late, return_exceptions=True)
        for job in late:  # a peer that started while it was being cancelled is stopped too
            if not job.cancelled() and job.exception() is None:
                result.serving.append(job.result())
    result.failed += [(t, RuntimeError("no host or client was left to send it"))
                      for t, _ in [*pending, *direct_only]]
    return result


def _started_serving(job: asyncio.Future[Any], holder: R, sources: list[_Source[R, P]],
                     result: FanOut[T, R, P], per_peer: int) -> None:
    error = job.exception()
    if error is not None:  # the holder is ready itself; it only cannot serve others
        logger.warning("a host could not serve the environment to others: %s", error)
        return
    peer = job.result()
    result.serving.append(peer)
    sources.append(_Source(holder=holder, peer=peer, capacity=per_peer))
