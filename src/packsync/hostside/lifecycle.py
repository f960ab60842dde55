"""Environments that look after themselves: listed, expired when unused, capped in size.

An environment's last use is its ready marker's mtime (every reuse touches it). The
collector removes an environment unused for longer than the expiry (24 h by default) and,
with a size cap, the least recently used ones until the cache fits, but never one in use
(its lease is held: ``lease``), one being built (its builders' lock is held), or one used
within the last ``GRACE`` seconds (about to be started from). It also removes what
interrupted builds left, and the live code links of worker commands' jobs that have all
ended (``livecode.held_link``). A removal holds the lease exclusively and the builders' lock, so
nothing starts from the environment or builds it meanwhile; the ready marker goes first,
so a removal cut short leaves a directory nobody takes as ready.

The client runs the collector at launch at most once an ``INTERVAL`` (``collect_if_due``),
as hosts and worker commands do after they prepared an environment, and ``packsync cache
gc`` runs it on demand. Standard library only: this runs on hosts too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import time
from collections.abc import Mapping
from typing import TypedDict

from packsync.hostside import contents, install, layout, lease
from packsync.hostside.protocol import emit

INTERVAL = 3600.0
EXPIRY = 24 * 3600.0
GRACE = 600.0
STAMP = "envs-gc.stamp"
LEFTOVER_AGE = 3600.0  # a discarded or staging directory this old belongs to no live build
EXPIRY_VARIABLE = "PACKSYNC_CACHE_EXPIRY"  # on hosts, where packsync's config is not
MAX_SIZE_VARIABLE = "PACKSYNC_CACHE_MAX_SIZE"
_PACKAGE = re.compile(r'^\[\[packages\]\]\s*\nname = "([^"]+)"\s*\nversion = "([^"]*)"',
                      re.MULTILINE)


class EnvInfo(TypedDict):
    """One environment of a cache, as ``packsync cache list`` shows it."""

    env_id: str
    path: str
    size: int  # bytes of its files (files hard-linked from uv's cache counted in full)
    last_use: float  # seconds since the epoch
    in_use: bool
    ready: bool
    digest: str  # the SHA-256 of its lock
    packages: list[str]  # "name==version" of its lock


class Removal(TypedDict):
    env_id: str
    size: int
    reason: str  # "expired", "size cap", "unfinished", "leftover"


class Collection(TypedDict):
    removed: list[Removal]
    kept: int
    freed: int
    dry_run: bool
    links: int  # live code links of ended worker-command jobs removed (or to be removed)


def environments(cache: str) -> list[EnvInfo]:
    """Every environment directory of the cache, most recently used first."""
    root = os.path.join(cache, "envs")
    try:
        entries = [e for e in os.scandir(root)
                   if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")]
    except FileNotFoundError:
        return []
    found = [_info(entry.path) for entry in entries]
    return sorted(found, key=lambda info: info["last_use"], reverse=True)


def _info(path: str) -> EnvInfo:
    marker = contents.read_marker(path)
    dirs = (marker or {}).get("dirs")
    if isinstance(dirs, dict):
        size = sum(int(e[0]) for _, entries in dirs.values() for e in entries.values()
                   if e and e[0] not in ("->", "d"))
    else:
        size = sum(s.st_size for s in contents.walk(path).values())
    try:
        used = os.stat(os.path.join(path, layout.READY_MARKER)).st_mtime
    except OSError:
        used = _mtime(path)
    return {
        "env_id": os.path.basename(path), "path": path, "size": size, "last_use": used,
        "in_use": lease.in_use(path), "ready": marker is not None,
        "digest": str((marker or {}).get("digest", "")), "packages": _packages(path),
    }


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def _packages(path: str) -> list[str]:
    try:
        with open(os.path.join(path, layout.RECORD_DIR, "pylock.toml"), encoding="utf-8") as lock:
            text = lock.read()
    except (OSError, UnicodeDecodeError):
        return []
    return [f"{name}=={version}" for name, version in _PACKAGE.findall(text)]


def chosen(infos: list[EnvInfo], *, now: float, expiry: float,
           max_size: int | None) -> list[Removal]:
    """What a collection removes of ``infos``: unfinished and expired environments, then
    the least recently used until the rest fit in ``max_size``; never one in use or used
    within ``GRACE``."""
    removals: list[Removal] = []
    kept: list[EnvInfo] = []
    for info in infos:
        recent = now - info["last_use"] < GRACE
        if info["in_use"] or recent:
            kept.append(info)
        elif not info["ready"]:
            removals.append({"env_id": info["env_id"], "size": info["size"],
                             "reason": "unfinished"})
        elif now - info["last_use"] > expiry:
            removals.append({"env_id": info["env_id"], "size": info["size"], "reason": "expired"})
        else:
            kept.append(info)
    if max_size is not None:
        total = sum(info["size"] for info in kept)
        for info in sorted(kept, key=lambda i: i["last_use"]):
            if total <= max_size:
                break
            if info["in_use"] or now - info["last_use"] < GRACE:
                continue
            removals.append({"env_id": info["env_id"], "size": info["size"],
                             "reason": "size cap"})
            total -= info["size"]
    return removals


def collect(cache: str, *, expiry: float = EXPIRY, max_size: int | None = None,
            dry_run: bool = False, now: float | None = None) -> Collection:
    """Remove what ``chosen`` picks (each re-checked under its locks) and old leftovers."""
    now = time.time() if now is None else now
    infos = environments(cache)
    removed: list[Removal] = []
    for removal in chosen(infos, now=now, expiry=expiry, max_size=max_size):
        if dry_run or remove(cache, removal["env_id"]):
            removed.append(removal)
    if not dry_run:
        removed += _leftovers(cache, now)
    return {"removed": removed, "kept": len(infos) - sum(r["reason"] != "leftover"
                                                         for r in removed),
            "freed": sum(r["size"] for r in removed), "dry_run": dry_run,
            "links": unused_links(cache, dry_run=dry_run)}


def unused_links(cache: str, *, dry_run: bool = False) -> int:
    """Remove the live code links whose lease no process holds: every job that ran
    through one has ended. Links without a lease (a cluster's on this machine or on an
    SSH host, which the cluster removes at close) are not touched. How many went."""
    live = os.path.join(cache, "code", "live")
    try:
        leases = [e.path for e in os.scandir(live) if e.name.endswith(lease.SUFFIX)]
    except FileNotFoundError:
        return 0
    count = 0
    for path in leases:
        link = path[:-len(lease.SUFFIX)]
        if dry_run:
            count += not lease.in_use(link)
            continue
        with lease.exclusive(link) as free:
            if free:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(link)
                count += 1
    return count


def remove(cache: str, env_id: str) -> bool:
    """Remove one environment unless it is in use or being built; whether it was."""
    path = layout.env_dir(cache, env_id)
    build_lock = layout.env_lock(cache, env_id)
    with lease.exclusive(path) as free:
        if not free:
            return False
        held = lease.open_locked(build_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if held is None:
            return False
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(path, layout.READY_MARKER))
            install.discard(path)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(build_lock)
        finally:
            os.close(held)
    return True


def _leftovers(cache: str, now: float) -> list[Removal]:
    """Directories of interrupted builds and lock files of removed environments."""
    root = os.path.join(cache, "envs")
    removed: list[Removal] = []
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return []
    names = {entry.name for entry in entries}
    for entry in entries:
        if entry.name.startswith((".discarded-", layout.STAGING_PREFIX)) \
                and now - _mtime(entry.path) > LEFTOVER_AGE:
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append({"env_id": entry.name, "size": 0, "reason": "leftover"})
        elif entry.name.endswith(".lock") and entry.name[:-5] not in names:
            held = lease.open_locked(entry.path, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if held is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                os.close(held)
        elif entry.name.endswith(lease.SUFFIX) and entry.name[:-len(lease.SUFFIX)] not in names:
            with lease.exclusive(entry.path[:-len(lease.SUFFIX)]):
                pass
    return removed


def collect_if_due(cache: str, *, expiry: float = EXPIRY, max_size: int | None = None,
                   interval: float = INTERVAL, now: float | None = None) -> Collection | None:
    """The automatic pass: ``collect`` at most once an ``interval`` (one ``stat`` else)."""
    now = time.time() if now is None else now
    stamp = os.path.join(cache, STAMP)
    try:
        if now - os.stat(stamp).st_mtime < interval:
            return None
    except FileNotFoundError:
        pass
    with open(stamp, "a", encoding="utf-8"):
        pass
    os.utime(stamp, (now, now))
    return collect(cache, expiry=expiry, max_size=max_size, now=now)


def collect_on_host(cache: str, sent: Mapping[str, object] | None = None) -> None:
    """The automatic pass on a host or a worker command's machine, after it prepared an
    environment (leased by then): with the settings the client ``sent`` in its header,
    else those of the host's environment; a failure only says so. Between the hourly
    passes, the live code links of ended jobs go at once (a few ``flock`` calls)."""
    expiry, max_size = sent_settings(sent or {}, host_settings(os.environ))
    try:
        if collect_if_due(cache, expiry=expiry, max_size=max_size) is None:
            unused_links(cache)
    except OSError as error:
        emit("step", message=f"collecting unused environments failed: {error}")


def sent_settings(sent: Mapping[str, object],
                  otherwise: tuple[float, int | None]) -> tuple[float, int | None]:
    """The expiry and size cap of a client's header (``cache_expiry`` in seconds,
    ``cache_max_size`` in bytes or None for no cap); ``otherwise`` for what it lacks (a
    client of an earlier release) or gives in a form not understood."""
    expiry, max_size = otherwise
    sent_expiry = sent.get("cache_expiry")
    if isinstance(sent_expiry, (int, float)) and not isinstance(sent_expiry, bool) \
            and sent_expiry > 0:
        expiry = float(sent_expiry)
    if "cache_max_size" in sent:
        sent_size = sent["cache_max_size"]
        if sent_size is None:
            max_size = None
        elif isinstance(sent_size, int) and not isinstance(sent_size, bool) and sent_size > 0:
            max_size = sent_size
    return expiry, max_size


def host_settings(environ: Mapping[str, str]) -> tuple[float, int | None]:
    """The expiry and size cap on a host, where packsync's configuration is not: its
    ``PACKSYNC_CACHE_EXPIRY`` (``36h``, ``7d``, seconds) and ``PACKSYNC_CACHE_MAX_SIZE``
    (``20GB``, ``500MiB``, bytes), else the defaults (24 h, no cap)."""
    expiry = _amount(environ.get(EXPIRY_VARIABLE, ""), _DURATIONS)
    size = _amount(environ.get(MAX_SIZE_VARIABLE, ""), _SIZES)
    return (EXPIRY if expiry is None else expiry), (None if size is None else int(size))


_DURATIONS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZES = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_AMOUNT = re.compile(r"^\s*([0-9.]+)\s*([a-z]*)\s*$")


def _amount(text: str, units: dict[str, int]) -> float | None:
    match = _AMOUNT.match(text.lower())
    if match is None or match.group(2) not in units:
        return None
    try:
        return float(match.group(1)) * units[match.group(2)]
    except ValueError:
        return None
