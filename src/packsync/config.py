"""Where packsync keeps things: the cache root, the default store, the uv binary.

Each setting comes from, in order: the argument, an environment variable, the
Dask configuration under ``packsync.``, a default under the user cache directory.
"""

from __future__ import annotations

import os
from pathlib import Path

import dask.config
import platformdirs


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
