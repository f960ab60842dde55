"""Conda channel URLs: the redacted form that is stored, the live form kept in memory.

A channel token sits in the path (``https://host/t/<token>/channel``) and a password in
the userinfo; both are credentials. Snapshots, plans and locks hold only the redacted
URL; the live one is read from the client's ``conda-meta`` records when a lock is made
and handed to the installer in memory.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from packsync.redact import redact_url

REDACTED_TOKEN = "***"
_TOKEN = re.compile(r"/t/[^/]+(?=/|$)")


def redact_channel(url: str) -> str:
    """``https://u:p@host/t/tk/chan`` -> ``https://***@host/t/***/chan``."""
    return _TOKEN.sub(f"/t/{REDACTED_TOKEN}", redact_url(url))


def channel_secrets(urls: Iterable[str]) -> set[str]:
    """Every token or password in ``urls`` (to check output against)."""
    found: set[str] = set()
    for url in urls:
        found.update(m.group(0)[3:] for m in _TOKEN.finditer(url))
        netloc = url.split("://", 1)[-1].split("/", 1)[0]
        if "@" in netloc:
            user, _, password = netloc.rsplit("@", 1)[0].partition(":")
            found.add(password or user)
    return {s for s in found if s and s != REDACTED_TOKEN}


def live_channels(prefix: str | os.PathLike[str]) -> dict[str, str]:
    """Redacted channel URL -> the live one, as the prefix's records name them."""
    found: dict[str, str] = {}
    meta = Path(prefix) / "conda-meta"
    try:
        names = sorted(n for n in os.listdir(meta) if n.endswith(".json"))
    except OSError:
        return found
    for name in names:
        try:
            record = json.loads((meta / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        channel = record_channel(record)
        if channel:
            found.setdefault(redact_channel(channel), channel)
    return found


def record_channel(record: Mapping[str, object]) -> str:
    """The channel a record came from, live: taken from its package URL when possible,
    since installers may store the ``channel`` field with the token already masked."""
    url, subdir, name = (str(record.get(k) or "") for k in ("url", "subdir", "fn"))
    tail = f"/{subdir}/{name}"
    if url and subdir and name and url.endswith(tail):
        return normalize_channel(url[: -len(tail)])
    return normalize_channel(str(record.get("channel") or ""))


def normalize_channel(url: str) -> str:
    """A channel URL without the trailing slash (records differ on it)."""
    return url.rstrip("/")

