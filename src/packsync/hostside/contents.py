"""What a ready environment holds, recorded when it becomes ready and checked at each reuse.

A file deleted from a package, an edited module or a ``.pth`` file dropped into
site-packages would otherwise go unnoticed until a task fails on a worker. The ready
marker (written last) records every file and link of the environment: size and mtime
(one ``lstat`` each to check: a relaunch stays fast), a link's target, and the SHA-256 of
the small files that run code at every interpreter start (``*.pth``,
``sitecustomize.py``, ``usercustomize.py``, ``pyvenv.cfg``). The marker also names the
digest of the lock the environment was built from and its owner: an environment is used
only when the marker is its owner's, is about the lock asked for, and that lock is the
one the environment holds (``.packsync/pylock.toml``).

A ``.pyc`` file added to a ``__pycache__`` directory is not damage: Python writes byte
code for a source it finds without any, and checks it against its source when it loads it.

Standard library only: this runs on hosts too, and inside workers (``worker_check``).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
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


def _entry(path: str, name: str, stat: os.stat_result, *, hashed: bool) -> Entry:
    if os.path.islink(path):
        return ["->", os.readlink(path)]
    entry: Entry = [stat.st_size, stat.st_mtime_ns]
    if hashed and _hashed(name):
        entry.append(sha256_file(path))
    return entry


def walk(root: str) -> dict[str, os.stat_result]:
    """Every file and link below ``root`` (relative path -> its ``lstat``), not the marker."""
    found: dict[str, os.stat_result] = {}
    stack = [""]
    while stack:
        relative = stack.pop()
        try:
            entries = list(os.scandir(os.path.join(root, relative) if relative else root))
        except OSError:  # gone, or not readable: its files count as missing
            continue
        for entry in entries:
            name = entry.name if not relative else relative + "/" + entry.name
            if entry.is_dir(follow_symlinks=False):
                stack.append(name)
            elif not relative and entry.name.startswith(READY_MARKER):
                continue
            else:
                found[name] = entry.stat(follow_symlinks=False)
    return found


def record(root: str) -> dict[str, Entry]:
    """The record of every file of the environment at ``root``."""
    return {name: _entry(os.path.join(root, name), name.rsplit("/", 1)[-1], stat, hashed=True)
            for name, stat in walk(root).items()}


def differences(root: str, recorded: dict[str, Entry]) -> list[str]:
    """How the environment at ``root`` differs from ``recorded``: missing, changed, added."""
    found = walk(root)
    problems: list[str] = []
    for name, expected in recorded.items():
        stat = found.pop(name, None)
        if stat is None:
            problems.append(f"missing {name}")
            continue
        path = os.path.join(root, name)
        if expected[0] == "->":
            same = os.path.islink(path) and os.readlink(path) == expected[1]
        else:
            same = (not os.path.islink(path) and stat.st_size == expected[0]
                    and stat.st_mtime_ns == expected[1])
            if same and len(expected) > 2:
                try:
                    same = sha256_file(path) == expected[2]
                except OSError:
                    same = False
        if not same:
            problems.append(f"changed {name}")
    problems += [f"added {name}" for name in sorted(found)
                 if not (name.endswith(".pyc") and "/__pycache__/" in "/" + name)]
    return problems


def describe(problems: list[str]) -> str:
    shown = ", ".join(problems[:_SHOWN])
    return shown + (f" and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else "")


def mark_ready(root: str, digest: str) -> None:
    """The last write of a build: the record of what the environment holds, its lock's
    digest and its owner. From now on the directory is used as it is."""
    marker = {"format": FORMAT, "digest": digest, "uid": os.getuid(), "files": record(root)}
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
    if marker.get("format") != FORMAT or not isinstance(marker.get("files"), dict):
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
        problems = differences(root, marker["files"])
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
    if marker and isinstance(marker.get("files"), dict):
        return {"prefix": sys.prefix, "recorded": True,
                "problems": differences(sys.prefix, marker["files"])}
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
