"""The working project's own lock files: ``uv.lock``, ``pylock.toml`` and ``pixi.lock``.

A project resolved for every platform (uv's universal ``uv.lock``, a multi-platform
``pylock.toml``, pixi's per-platform ``pixi.lock``) already holds the exact versions a
worker on another platform should get. This module only reads them, into the versions
each one pins and the platforms (a PEP 508 marker) each version is for; whether a lock
matches this environment and what the workers take from it is the plan's business.

They are looked for in the working directory and its parents, up to the project's root
(the first directory with a lock, a ``pyproject.toml``, a ``pixi.toml`` or ``.git``).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from packsync.model import LockedVersion, LockKind, ProjectLock

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

LOCK_FILES: tuple[LockKind, ...] = ("uv.lock", "pylock.toml", "pixi.lock")
_ROOT_MARKERS = ("pyproject.toml", "pixi.toml", ".git")
_LOCAL_SOURCES = ("editable", "virtual", "directory", "path")
# conda subdirs as the PEP 508 markers of the Pythons that run there
SUBDIR_MARKERS: Mapping[str, str] = {
    "linux-64": "sys_platform == 'linux' and platform_machine == 'x86_64'",
    "linux-aarch64": "sys_platform == 'linux' and platform_machine == 'aarch64'",
    "osx-64": "sys_platform == 'darwin' and platform_machine == 'x86_64'",
    "osx-arm64": "sys_platform == 'darwin' and platform_machine == 'arm64'",
    "win-64": "sys_platform == 'win32'",
}


def project_locks(start: Path) -> tuple[tuple[ProjectLock, ...], tuple[str, ...]]:
    """The locks of the project ``start`` is in, and a note for each one unreadable."""
    for directory in (start, *start.parents):
        found = [directory / name for name in LOCK_FILES if (directory / name).is_file()]
        if found:
            locks: list[ProjectLock] = []
            notes: list[str] = []
            for path in found:
                try:
                    read = read_lock(path)
                except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
                    notes.append(f"the project lock {path} cannot be read ({error}): not used")
                    continue
                if read is None:
                    notes.append(f"{path} was written by packsync for the workers, not by "
                                 "the project: not used as a project lock")
                else:
                    locks.append(read)
            return tuple(locks), tuple(notes)
        if any((directory / marker).exists() for marker in _ROOT_MARKERS):
            break
    return (), ()


def read_lock(path: Path) -> ProjectLock | None:
    """The versions ``path`` pins, by its name's kind; ``None`` for a lock packsync wrote."""
    text = path.read_text(encoding="utf-8")
    if path.name == "uv.lock":
        if not text.startswith("version = "):
            raise ValueError("not a uv.lock: it does not start with its version")
        return _uv_lock(path, tomllib.loads(_outline(text, "[[package]]", _UV_LOCK_KEYS)))
    if path.name == "pixi.lock":
        import yaml

        # the environments name every package by URL; the package list after them is
        # not needed (and is most of the file)
        head = text.split("\npackages:\n", 1)[0]
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        return _pixi_lock(path, yaml.load(head, Loader=loader))  # noqa: S506 (a safe loader)
    if "\n[tool.packsync]" in text:  # packsync's own lock for the workers
        return None
    outline = _outline(text, "[[packages]]", _PYLOCK_KEYS)
    if "[[packages]]" not in outline:  # not laid out as uv writes it: read it all
        outline = text
    return _pylock(path, tomllib.loads(outline))


_UV_LOCK_KEYS = ("version = ", "name = ", "source = ", "resolution-markers = [",
                 "supported-markers = [")
_PYLOCK_KEYS = ("lock-version = ", "name = ", "version = ", "marker = ", "environments = ")


def _outline(text: str, header: str, keys: tuple[str, ...]) -> str:
    """The part of a lock read here, as TOML: the top-level ``keys`` and those of each
    ``header`` table (``[[package]]``), without the file lists, hashes and dependency
    tables that make up most of the file (parsing those took 118 ms for 135 packages)."""
    kept: list[str] = []
    table = ""
    in_list = False
    for line in text.splitlines():
        if in_list:
            kept.append(line)
            in_list = line != "]"
        elif line.startswith("["):
            table = line
            if line == header:
                kept.append(line)
        elif table in ("", header) and line.startswith(keys):
            kept.append(line)
            in_list = line.endswith("[")
    return "\n".join(kept) + "\n"


def _uv_lock(path: Path, data: Mapping[str, Any]) -> ProjectLock:
    """uv's universal lock: a package resolved differently per platform appears once per
    fork, each with the ``resolution-markers`` of the platforms it is for."""
    packages = []
    for entry in data.get("package", []):
        source = entry.get("source", {})
        if "version" not in entry or any(kind in source for kind in _LOCAL_SOURCES):
            continue  # the project itself and other local code: built, never pinned
        forks = entry.get("resolution-markers", [])
        packages.append(LockedVersion(
            name=str(entry["name"]), version=str(entry["version"]), marker=_any_of(forks)))
    return ProjectLock(path=str(path), kind="uv.lock", packages=tuple(packages),
                       environments=tuple(str(m) for m in data.get("supported-markers", [])))


def _pylock(path: Path, data: Mapping[str, Any]) -> ProjectLock:
    """PEP 751: each package may carry a ``marker``; ``environments`` bounds the lock."""
    packages = tuple(
        LockedVersion(name=str(p["name"]), version=str(p["version"]),
                      marker=str(p.get("marker", "")))
        for p in data.get("packages", []) if p.get("version")
    )
    return ProjectLock(path=str(path), kind="pylock.toml", packages=packages,
                       environments=tuple(str(m) for m in data.get("environments", [])))


def _pixi_lock(path: Path, data: Mapping[str, Any]) -> ProjectLock:
    """pixi's lock lists, per environment and conda subdir, the URLs of its packages; the
    default environment is the project's. Each version is marked with its subdirs, and
    named by its file (``name-version-build.conda``, a wheel's or an sdist's name)."""
    subdirs: dict[tuple[str, str], list[str]] = {}
    default = data.get("environments", {}).get("default", {})
    for subdir, entries in default.get("packages", {}).items():
        if subdir not in SUBDIR_MARKERS:
            continue
        for entry in entries:
            url = _url(entry)
            name, version = _name_version(url)
            if name and version:
                subdirs.setdefault((name, version), []).append(SUBDIR_MARKERS[subdir])
    packages = tuple(
        LockedVersion(name=name, version=version, marker=_any_of(markers))
        for (name, version), markers in sorted(subdirs.items())
    )
    return ProjectLock(path=str(path), kind="pixi.lock", packages=packages)


def _url(entry: Mapping[str, Any]) -> str:
    return str(entry.get("conda") or entry.get("pypi") or entry.get("url") or "")


def _name_version(url: str) -> tuple[str, str]:
    """A package's name and version from its file name: ``name-version-build.conda`` (or
    ``.tar.bz2``), a wheel's ``name-version-tags.whl``, an sdist's ``name-version.tar.gz``."""
    filename = url.rsplit("/", 1)[-1]
    if filename.endswith(".whl"):
        name, version = filename.split("-")[:2]
        return name, version
    for suffix in (".conda", ".tar.bz2"):
        if filename.endswith(suffix):
            parts = filename.removesuffix(suffix).rsplit("-", 2)
            if len(parts) == 3:
                return parts[0], parts[1]
    for suffix in (".tar.gz", ".zip"):
        if filename.endswith(suffix):
            name, _, version = filename.removesuffix(suffix).rpartition("-")
            return name, version
    return "", ""


def _any_of(markers: list[str]) -> str:
    """One marker true where any of ``markers`` is (empty: everywhere)."""
    if not markers:
        return ""
    if len(markers) == 1:
        return str(markers[0])
    return " or ".join(f"({m})" for m in markers)
