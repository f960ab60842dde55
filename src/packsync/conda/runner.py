"""py-rattler, imported lazily, and its coroutines run from synchronous code."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from packsync.conda.auth import ChannelAccess
from packsync.errors import PacksyncError

T = TypeVar("T")


def require_rattler(error: type[PacksyncError]) -> Any:
    """The ``rattler`` module, or ``error`` saying how to get it."""
    try:
        import rattler
    except ImportError as missing:
        raise error(
            "this is a conda environment, and syncing it needs py-rattler",
            package="py-rattler",
            hint="pip install 'packsync[conda]'",
        ) from missing
    return rattler


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to completion, in a thread of its own when a loop is running here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    result: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coroutine))
        except BaseException as error:  # re-raised in the caller's thread
            failure.append(error)

    thread = threading.Thread(target=target, name="packsync-rattler")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def client(access: ChannelAccess) -> Any:
    """A rattler HTTP client that reaches the channels through their live URLs, so that
    only redacted URLs ever reach rattler's caches and records, with the headers the
    user's conda credential files give each channel (``conda.auth``, in memory); netrc,
    the keyring and rattler's own credential file apply as for rattler itself."""
    from rattler.networking import (
        AddHeadersMiddleware,
        AuthenticationMiddleware,
        Client,
        MirrorMiddleware,
    )

    mirrors = {r: [live] for r, live in access.urls.items() if r != live}
    middlewares: list[Any] = [AuthenticationMiddleware()]
    if access.headers:
        middlewares.insert(0, AddHeadersMiddleware(access.headers_for))
    if mirrors:  # first: the headers are chosen for the live URL
        middlewares.insert(0, MirrorMiddleware(mirrors))
    return Client(middlewares)
