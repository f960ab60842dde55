"""Content-addressed artifact store: objects are named by their SHA-256 and checked on fetch.

An object is never visible half-written (a local file is renamed into place, an
object-store PUT is atomic), and a fetched object whose bytes do not match its name
is refused, never installed. Objects expire a while after their last use (a put of an
existing object, a fetch, or a ``touch``): ``gc`` is the only thing that deletes them.

The local directory store (``store.local``) is the default; any other fsspec URL
(``s3://``, ``gs://``, ``memory://``...) gets an ``FsspecStore`` (``store.fsspec``).
This package is the face callers use: ``open_store`` and the names below.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from packsync.errors import StoreError
from packsync.store.fsspec import FsspecStore, open_fsspec_store
from packsync.store.gc import gc_if_due
from packsync.store.local import LocalStore
from packsync.store.objects import Clock, GcResult, Store, sha256_file

__all__ = [
    "FsspecStore",
    "GcResult",
    "LocalStore",
    "Store",
    "gc_if_due",
    "open_store",
    "sha256_file",
]


def open_store(
    url: str | os.PathLike[str],
    *,
    storage_options: Mapping[str, Any] | None = None,
    clock: Clock = time.time,
) -> Store:
    """The store at a local path or ``file://`` URL, or any other fsspec URL."""
    text = os.fspath(url)
    parts = urlsplit(text)
    if parts.scheme in ("", "file") or (len(parts.scheme) == 1 and os.name == "nt"):
        return LocalStore(Path(parts.path if parts.scheme == "file" else text).expanduser(),
                          clock=clock)
    if parts.password is not None or parts.username is not None:
        raise StoreError(
            f"the store URL for {parts.scheme}://{parts.hostname or ''} carries credentials, "
            "and store URLs are logged",
            path=f"{parts.scheme}://{parts.hostname or ''}{parts.path}",
            hint="pass credentials through the storage's own configuration (for S3: "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile), or storage_options",
        )
    return open_fsspec_store(text, storage_options=storage_options, clock=clock)
