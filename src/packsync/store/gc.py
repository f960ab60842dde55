"""The automatic clean-up at launch: expired objects go, at most once an interval.

``Store.gc`` is the only thing that deletes objects; this decides when a launch runs it.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from packsync.errors import StoreError
from packsync.store.objects import Clock, GcResult, Store

logger = logging.getLogger(__name__)

GC_INTERVAL = 3600.0
GC_STAMP = "store-gc.stamp"


def gc_if_due(
    store: Store,
    *,
    cache: Path,
    expiry: float,
    interval: float = GC_INTERVAL,
    clock: Clock = time.time,
) -> GcResult | None:
    """The cheap automatic pass at launch: a ``gc`` at most once per ``interval``.

    One ``stat`` of a stamp file in the cache when nothing is due. A failing pass only
    logs: it must never stop a launch.
    """
    stamp = cache / GC_STAMP
    now = clock()
    try:
        if now - stamp.stat().st_mtime < interval:
            return None
    except FileNotFoundError:
        pass
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.touch()
        os.utime(stamp, (now, now))
        result = store.gc(expiry)
    except (OSError, StoreError) as error:
        logger.warning("automatic clean-up of the store %s failed: %s", store.url, error)
        return None
    if result.removed:
        logger.info("removed %d expired objects (%d bytes) from the store %s",
                    len(result.removed), result.removed_bytes, store.url)
    return result
