"""The working project's own lock files: ``uv.lock``, ``pylock.toml`` and ``pixi.lock``.

A project resolved for every platform (uv's universal ``uv.lock``, a multi-platform
``pylock.toml``, pixi's per-platform ``pixi.lock``) already holds the exact versions a
worker on another platform should get. This module only reads them, into the versions
each one pins and the platforms (a PEP 508 marker) each version is for; whether a lock
matches this environment and what the workers take from it is the plan's business.

A ``pixi.lock`` locks several environments (``pixi run -e cuda``): the one this Python
runs in is read, with each conda package's build and file, so that the workers can get
the very artifact the project locked; its other environments are read alongside (in
``ProjectLock.others``), for a plan whose workers are asked to get one of them.

They are looked for in the working directory and its parents, up to the project's root
(the first directory with a lock, a ``pyproject.toml``, a ``pixi.toml`` or ``.git``).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path, PurePath
from typing import Any

from packsync.conda.channels import redact_channel
from packsync.model import LockedVersion, LockKind, ProjectLock
from packsync.redact import urls_in

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


def project_locks(
    start: Path, *, prefix: str = "", environ: Mapping[str, str] | None = None
) -> tuple[tuple[ProjectLock, ...], tuple[str, ...]]:
    """The locks of the project ``start`` is in, and a note for each one unreadable or not
    for this environment; ``prefix`` and ``environ`` say which pixi environment runs."""
    environment = pixi_environment(prefix, {} if environ is None else environ)
    for directory in (start, *start.parents):
        found = [directory / name for name in LOCK_FILES if (directory / name).is_file()]
        if found:
            locks: list[ProjectLock] = []
            notes: list[str] = []
            for path in found:
                try:
                    read = read_lock(path, environment)
                except _NotUsed as reason:
                    notes.append(str(reason))
                    continue
                except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
                    notes.append(f"the project lock {path} cannot be read "
                                 f"({_masked(str(error))}): not used")
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


def read_lock(path: Path, pixi_environment: str = "default") -> ProjectLock | None:
    """The versions ``path`` pins, by its name's kind; ``None`` for a lock packsync wrote.
    Of a ``pixi.lock``, only ``pixi_environment`` is read."""
    if path.name == "pixi.lock":
        return _pixi_lock(path, pixi_environment)
    text = path.read_text(encoding="utf-8")
    if path.name == "uv.lock":
        if not text.startswith("version = "):
            raise ValueError("not a uv.lock: it does not start with its version")
        return _uv_lock(path, tomllib.loads(_outline(text, "[[package]]", _UV_LOCK_KEYS)))
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


def pixi_environment(prefix: str, environ: Mapping[str, str]) -> str:
    """The pixi environment this Python runs in: the ``<name>`` of a ``.pixi/envs/<name>``
    prefix, else the one ``pixi shell``/``pixi run`` activated (``PIXI_ENVIRONMENT_NAME``),
    else pixi's ``default``."""
    path = PurePath(prefix)
    if len(path.parts) >= 3 and path.parent.name == "envs" and path.parent.parent.name == ".pixi":
        return path.name
    return environ.get("PIXI_ENVIRONMENT_NAME", "") or "default"


class _NotUsed(Exception):
    """A lock that reads fine but is not for this environment (its message says why)."""


def _pixi_lock(path: Path, environment: str) -> ProjectLock:
    """pixi's lock (read by py-rattler: formats 5 and 6 at least), for the environment this
    Python runs in: per conda subdir, the conda packages (version, build, file and SHA-256)
    and the PyPI ones; each is marked with its subdir."""
    try:
        import rattler
    except ImportError:
        raise _NotUsed(f"the project lock {path} is read with py-rattler, which is not "
                       "installed (pip install 'packsync[conda]'): not used") from None
    try:
        lock = rattler.LockFile.from_path(path)
    except Exception as error:  # rattler raises its own exception types
        raise ValueError((str(error).strip().splitlines() or [type(error).__name__])[0]) from None
    environments = dict(lock.environments())
    if environment not in environments:
        names = ", ".join(sorted(environments))
        raise _NotUsed(f"the project lock {path} has no environment {environment!r}, the "
                       f"one this Python runs in (it has: {names}): not used")
    others = tuple(_pixi_environment(path, name, env)
                   for name, env in sorted(environments.items()) if name != environment)
    return replace(_pixi_environment(path, environment, environments[environment]),
                   others=others)


def _pixi_environment(path: Path, environment: str, env: Any) -> ProjectLock:
    """One environment of a ``pixi.lock``: its packages marked with their subdir."""
    packages: list[LockedVersion] = []
    for subdir, records in sorted(env.conda_repodata_records().items()):
        if subdir in SUBDIR_MARKERS:
            packages += (_conda_record(r, SUBDIR_MARKERS[subdir]) for r in records)
    for subdir, dists in sorted(env.pypi_packages().items()):
        if subdir in SUBDIR_MARKERS:
            packages += (
                LockedVersion(name=str(d.name), version=str(d.version),
                              marker=SUBDIR_MARKERS[subdir])
                for d in dists if "://" in str(d.location)  # local code is built, not pinned
            )
    platforms = [str(p.name) for p in env.platforms()]
    return ProjectLock(
        path=str(path), kind="pixi.lock", packages=tuple(packages), environment=environment,
        environments=tuple(SUBDIR_MARKERS[p] for p in sorted(platforms) if p in SUBDIR_MARKERS),
    )


def _conda_record(record: Any, marker: str) -> LockedVersion:
    return LockedVersion(
        name=str(record.name.normalized), version=str(record.version), marker=marker,
        build=str(record.build), file=str(record.file_name),
        sha256=record.sha256.hex() if record.sha256 else "",
    )


def _any_of(markers: list[str]) -> str:
    """One marker true where any of ``markers`` is (empty: everywhere)."""
    if not markers:
        return ""
    if len(markers) == 1:
        return str(markers[0])
    return " or ".join(f"({m})" for m in markers)


def _masked(text: str) -> str:
    """``text`` (a reader's error, which may quote a lock's URLs) with no credential: a
    URL's userinfo, token-like parts and conda ``/t/<token>/`` masked."""
    for url in sorted(set(urls_in(text)), key=len, reverse=True):
        text = text.replace(url, redact_channel(url))
    return text
