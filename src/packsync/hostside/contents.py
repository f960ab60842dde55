"""What a ready environment holds, recorded when it becomes ready and checked at each reuse.

A file deleted from a package, an edited module or a ``.pth`` file dropped into
site-packages would otherwise go unnoticed until a task fails on a worker. The ready
marker (written last) records every directory (its mtime) and every file and link of the
environment: size and mtime (one ``lstat`` each to check, and a directory whose mtime is
unchanged is not even listed: a relaunch stays fast), a link's target, and the SHA-256 of
the small files that run code at every interpreter start (``*.pth``,
``sitecustomize.py``, ``usercustomize.py``, ``pyvenv.cfg``). The marker also names the
digest of the lock the environment was built from and its owner: an environment is used
only when the marker is its owner's, is about the lock asked for, and that lock is the
one the environment holds (``.packsync/pylock.toml``).

A ``.pyc`` file added to a ``__pycache__`` directory, or a ``__pycache__`` directory
added beside sources (an environment not byte-compiled, as a conda one's standard
library), is not damage: Python writes byte code for a source it finds without any, and
checks it against its source when it loads it.

Standard library only: this runs on hosts too, and inside workers (``worker_check``).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
import sys
import time
from typing import Any

READY_MARKER = ".packsync-ready"  # the layout's names (``layout`` takes them from here:
RECORD_DIR = ".packsync"  # this module travels to workers alone, by value)
FORMAT = 1
_HASHED_NAMES = {"sitecustomize.py", "usercustomize.py", "pyvenv.cfg"}
_LOCK = os.path.join(RECORD_DIR, "pylock.toml")
_SHOWN = 8
_INTACT: dict[str, float] = {}  # environments this process found intact: realpath -> when
FRESH = 60.0  # seconds a check of this process stands for its workers' own

Entry = list[Any]  # [size, mtime_ns] | [size, mtime_ns, sha256] | ["->", target]


def _hashed(name: str) -> bool:
    return name.endswith(".pth") or name in _HASHED_NAMES


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _entry(path: str, name: str, info: os.stat_result) -> Entry:
    if stat.S_ISLNK(info.st_mode):
        return ["->", os.readlink(path)]
    entry: Entry = [info.st_size, info.st_mtime_ns]
    if _hashed(name):
        entry.append(sha256_file(path))
    return entry


def walk(root: str) -> dict[str, os.stat_result]:
    """Every file and link below ``root`` (relative path -> its ``lstat``), not the marker."""
    found: dict[str, os.stat_result] = {}
    for relative, (_, entries) in record(root, stat_only=True).items():
        for name, info in entries.items():
            if isinstance(info, os.stat_result):
                found[f"{relative}/{name}" if relative else name] = info
    return found


def record(root: str, *, stat_only: bool = False) -> dict[str, Any]:
    """The record of the environment at ``root``: each directory (relative path, "" for
    ``root``) -> its mtime and its entries (name -> ``Entry``, ``["d"]`` for a directory)."""
    found: dict[str, Any] = {}
    stack = [""]
    while stack:
        relative = stack.pop()
        directory = os.path.join(root, relative) if relative else root
        try:
            mtime = os.stat(directory).st_mtime_ns
            listed = list(os.scandir(directory))
        except OSError:  # gone, or not readable: its files count as missing
            continue
        entries: dict[str, Any] = {}
        for entry in listed:
            if not relative and entry.name.startswith(READY_MARKER):
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append(f"{relative}/{entry.name}" if relative else entry.name)
                entries[entry.name] = ["d"]
                continue
            info = entry.stat(follow_symlinks=False)
            entries[entry.name] = info if stat_only else _entry(entry.path, entry.name, info)
        found[relative] = [mtime, entries]
    return found


def differences(root: str, recorded: dict[str, Any]) -> list[str]:
    """How the environment at ``root`` differs from ``recorded``: missing, changed, added.

    A directory whose mtime is as recorded holds the same names (an entry added, removed
    or renamed changes it): its files are ``lstat``-ed by name, not listed, and a
    ``__pycache__`` one is not looked into (a ``.pyc`` is replaced by renaming, never
    written in place). The top directory is always listed: the marker is written in it.
    """
    problems: list[str] = []
    for relative, (mtime, entries) in recorded.items():
        directory = os.path.join(root, relative) if relative else root
        prefix = relative + "/" if relative else ""
        try:
            same_names = bool(relative) and os.stat(directory).st_mtime_ns == mtime
        except OSError:
            same_names = False
        if same_names and relative.endswith("__pycache__"):
            continue
        if same_names:
            base = directory + os.sep  # (paths joined as strings: thousands of files)
            problems += [f"changed {prefix}{name}" for name, expected in entries.items()
                         if expected[0] != "d" and not _same(base + name, expected)]
            continue
        try:
            present = {e.name for e in os.scandir(directory)}
        except OSError:
            present = set()
        if not relative:
            present = {n for n in present if not n.startswith(READY_MARKER)}
        for name, expected in entries.items():
            if name not in present:
                problems.append(f"missing {prefix}{name}")
            elif expected[0] != "d" and not _same(os.path.join(directory, name), expected):
                problems.append(f"changed {prefix}{name}")
        pycache = relative.endswith("__pycache__")
        problems += [f"added {prefix}{name}" for name in sorted(present - set(entries))
                     if not (pycache and name.endswith(".pyc")) and not (
                         name == "__pycache__" and os.path.isdir(os.path.join(directory, name))
                         and not os.path.islink(os.path.join(directory, name)))]
    return problems


def _same(path: str, expected: Entry) -> bool:
    try:
        info = os.lstat(path)
        if expected[0] == "->":
            return stat.S_ISLNK(info.st_mode) and os.readlink(path) == expected[1]
        if stat.S_ISLNK(info.st_mode) or info.st_size != expected[0] \
                or info.st_mtime_ns != expected[1]:
            return False
        return len(expected) < 3 or sha256_file(path) == expected[2]
    except OSError:
        return False


def describe(problems: list[str]) -> str:
    shown = ", ".join(problems[:_SHOWN])
    return shown + (f" and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else "")


def mark_ready(root: str, digest: str) -> None:
    """The last write of a build: the record of what the environment holds, its lock's
    digest and its owner. From now on the directory is used as it is."""
    marker = {"format": FORMAT, "digest": digest, "uid": os.getuid(), "dirs": record(root)}
    partial = os.path.join(root, READY_MARKER + ".partial")
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(marker, handle, separators=(",", ":"))
    os.replace(partial, os.path.join(root, READY_MARKER))


def read_marker(root: str) -> dict[str, Any] | None:
    """The marker of the environment at ``root``; None if there is none."""
    try:
        with open(os.path.join(root, READY_MARKER), encoding="utf-8") as handle:
            text = handle.read()
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def trusted(root: str, digest: str | None, marker: dict[str, Any] | None = None) -> list[str]:
    """Why the environment at ``root`` is not to be trusted (empty: it is): its marker must
    be its owner's, of this format, about ``digest`` (when given) and about the lock the
    environment holds. Not the files: ``examine`` checks those."""
    marker = read_marker(root) if marker is None else marker
    if marker is None:
        return ["no ready marker"]
    problems: list[str] = []
    uid = os.getuid()
    for path in (root, os.path.join(root, READY_MARKER)):
        try:
            owner = os.lstat(path).st_uid
        except OSError:
            owner = -1
        if owner != uid:
            problems.append(f"{path} is not owned by this user (uid {owner}, not {uid})")
    if marker.get("format") != FORMAT or not isinstance(marker.get("dirs"), dict):
        return [*problems, "its ready marker was not written by this packsync version"]
    if marker.get("uid") != uid:
        problems.append(f"its ready marker names another owner (uid {marker.get('uid')})")
    if digest is not None and marker.get("digest") != digest:
        problems.append(f"its ready marker is about lock sha256:{str(marker.get('digest'))[:12]}")
    try:
        own = sha256_file(os.path.join(root, _LOCK))
    except OSError:
        own = ""
    if own != marker.get("digest"):
        problems.append(f"its lock {_LOCK} is not the one its ready marker names")
    return problems


def examine(root: str, digest: str | None) -> list[str] | None:
    """None when the environment at ``root`` is not ready (no marker); else why it must
    not be used (empty: it is ready, intact and trusted, and this use is recorded)."""
    marker = read_marker(root)
    if marker is None:
        return None
    problems = trusted(root, digest, marker)
    if not problems:
        problems = differences(root, marker["dirs"])
    if not problems:
        _INTACT[os.path.realpath(root)] = time.monotonic()
        try:
            os.utime(os.path.join(root, READY_MARKER))
        except OSError:
            pass
    return problems


def checked_here() -> list[str]:
    """The environments this process found intact within ``FRESH`` seconds: a worker of
    this machine running from one of them need not walk it again (``worker_check``)."""
    now = time.monotonic()
    return [root for root, when in _INTACT.items() if now - when < FRESH]


def worker_check(host: str = "", checked: list[str] | None = None) -> dict[str, Any]:
    """Run inside a worker: how its own environment (``sys.prefix``) differs from the
    record made when it became ready. Where there is none (an environment packsync did
    not build), every file each distribution's ``RECORD`` lists must be there with its
    size. ``recorded`` says which check ran. A worker on ``host`` whose environment is one
    the client ``checked`` a moment ago (``checked_here``) does not check it again."""
    if host == socket.gethostname() and os.path.realpath(sys.prefix) in (checked or []):
        return {"prefix": sys.prefix, "recorded": True, "problems": [], "checked": "client"}
    marker = read_marker(sys.prefix)
    if marker and isinstance(marker.get("dirs"), dict):
        return {"prefix": sys.prefix, "recorded": True,
                "problems": differences(sys.prefix, marker["dirs"])}
    return {"prefix": sys.prefix, "recorded": False, "problems": _record_problems()}


def _record_problems() -> list[str]:
    import importlib.metadata

    problems: list[str] = []
    for dist in importlib.metadata.distributions():
        for entry in dist.files or ():
            if entry.size is None or entry.parts[0].endswith(".dist-info"):
                continue
            try:
                size = os.stat(str(entry.locate())).st_size
            except OSError:
                problems.append(f"missing {entry}")
                continue
            if size != entry.size:
                problems.append(f"changed {entry}")
    return problems
