"""Where packsync keeps things: the cache root, the default store and its expiry.

Each setting comes from, in order: the argument, an environment variable, the
Dask configuration under ``packsync.``, a default under the user cache directory.
"""

from __future__ import annotations

import os
from pathlib import Path

import dask.config
import platformdirs
from dask.utils import parse_timedelta

from packsync.errors import StoreError


def cache_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The root of environments, locks and build records on this machine."""
    chosen = (
        explicit
        or os.environ.get("PACKSYNC_CACHE_DIR")
        or dask.config.get("packsync.cache-dir", default=None)
        or platformdirs.user_cache_dir("packsync")
    )
    return Path(chosen).expanduser().absolute()


def store_url(explicit: str | os.PathLike[str] | None, cache: Path) -> str:
    """The artifact store: the argument, ``PACKSYNC_STORE``, config, or ``<cache>/store``."""
    chosen = (
        explicit
        or os.environ.get("PACKSYNC_STORE")
        or dask.config.get("packsync.store", default=None)
        or cache / "store"
    )
    return os.fspath(chosen)


DEFAULT_STORE_EXPIRY = "24h"


def store_expiry(explicit: str | float | None = None) -> float:
    """Seconds a store object is kept after its last use.

    The argument, ``PACKSYNC_STORE_EXPIRY``, dask config ``packsync.store-expiry``, or
    24 hours; a number of seconds or a duration such as ``"36h"`` or ``"7 days"``.
    """
    chosen = (
        explicit
        if explicit is not None
        else os.environ.get("PACKSYNC_STORE_EXPIRY")
        or dask.config.get("packsync.store-expiry", default=None)
        or DEFAULT_STORE_EXPIRY
    )
    try:
        seconds = parse_timedelta(chosen, default="seconds")
    except (ValueError, KeyError, TypeError) as error:
        raise StoreError(
            f"{chosen!r} is not a duration",
            hint="give the store expiry as seconds or a duration such as '24h' or '7 days'",
        ) from error
    if seconds is None or seconds < 0:
        raise StoreError(f"{chosen!r} is not a positive duration",
                            hint="give the store expiry as a duration such as '24h'")
    return float(seconds)
