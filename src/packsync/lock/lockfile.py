"""The lock file: a PEP 751 ``pylock.toml`` with packsync's own ``[tool.packsync]`` table.

The lock names the environment: its SHA-256 is the ``EnvDigest`` every host caches
under. Local wheels are referenced as ``wheels/<file>`` beside the lock, with their
hashes, so the lock installs anywhere those wheels sit next to it, with or without
packsync. ``packaging.pylock`` validates the PEP 751 part; the ``[tool.packsync]`` table
is read field by field, and a damaged field is named by its path.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from packaging.pylock import Package, Pylock, PylockValidationError

from packsync.conda.locked import CondaLock
from packsync.errors import LockError
from packsync.hostside import layout, placeholders
from packsync.model import Relaxation

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

LOCK_FORMAT = 1
WHEELS_DIR = layout.WHEELS_DIR  # wheels beside a lock, as in an environment's record
_TABLE = "tool.packsync"
_REWRITE = "write a new lock with `packsync lock -o pylock.toml`"
_RELAXATION_FIELDS = ("name", "local-version", "specifier", "version", "reason")
# what ``platform.python_version()`` gives: a version, never a path to run
_PYTHON_VERSION = re.compile(r"\d+\.\d+(\.\d+((a|b|rc)\d+)?\+?)?", re.ASCII)

_T = TypeVar("_T")


@dataclass(frozen=True, kw_only=True, slots=True)
class LocalWheel:
    """A wheel of local code the lock refers to, fetched from the store by hash."""

    filename: str
    sha256: str


@dataclass(frozen=True, kw_only=True, slots=True)
class PacksyncTable:
    """``[tool.packsync]``: what packsync adds to a PEP 751 lock."""

    python: str
    target: str = ""
    uv_platform: str = ""
    relaxed: tuple[Relaxation, ...] = ()
    conda: CondaLock | None = None  # [tool.packsync.conda]: installed before the pip part

    def to_dict(self) -> dict[str, Any]:
        table: dict[str, Any] = {
            "format": LOCK_FORMAT,
            "python": self.python,
            "target": self.target,
            "uv-platform": self.uv_platform,
        }
        if self.relaxed:
            table["relaxed"] = [r.to_dict() for r in self.relaxed]
        if self.conda is not None:
            table["conda"] = self.conda.to_dict()
        return table

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], origin: str) -> PacksyncTable:
        """The table of format ``LOCK_FORMAT``; a ``LockError`` naming any bad field."""
        if data.get("format") != LOCK_FORMAT:
            raise LockError(
                f"{origin} was not written by packsync (no [{_TABLE}] table of format "
                f"{LOCK_FORMAT})",
                path=origin,
                hint="write the lock with `packsync lock -o pylock.toml`",
            )
        python = _required(data, "python", str, origin, _TABLE)
        if not python:
            raise _damaged(origin, f"{_TABLE}.python", "is empty")
        if not _PYTHON_VERSION.fullmatch(python):
            raise _damaged(origin, f"{_TABLE}.python",
                           f"is {python!r}, not a Python version such as 3.11.7")
        relaxed = _get(data, "relaxed", list, origin, _TABLE) or []
        conda = _get(data, "conda", dict, origin, _TABLE)
        return cls(
            python=python,
            target=_get(data, "target", str, origin, _TABLE) or "",
            uv_platform=_get(data, "uv-platform", str, origin, _TABLE) or "",
            relaxed=tuple(
                _relaxation(entry, origin, f"{_TABLE}.relaxed[{index}]")
                for index, entry in enumerate(relaxed)
            ),
            conda=CondaLock.from_dict(conda, origin) if conda else None,
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Lock:
    """A canonical ``pylock.toml`` and the digest that names its environment."""

    text: str
    digest: str
    python: str
    local_wheels: tuple[LocalWheel, ...]
    versions: Mapping[str, str]  # canonical name -> version the target gets
    relaxed: tuple[Relaxation, ...] = ()
    conda: CondaLock | None = None  # [tool.packsync.conda]: installed before the pip part

    @property
    def package_count(self) -> int:
        return len(self.versions)

    @property
    def token_labels(self) -> list[str]:
        """The index tokens the lock holds as placeholders (``lock.tokens``), by label."""
        return placeholders.labels_in(self.text)

    @property
    def env_id(self) -> str:
        """The environment's directory name: 128 bits of the digest keep paths short."""
        return self.digest[:32]

    @classmethod
    def from_text(cls, text: str, origin: str = "the lock") -> Lock:
        """Parse and validate a lock; anything foreign or damaged is a ``LockError``."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise LockError(
                f"{origin} is not valid TOML: {error}", path=origin, hint=_REWRITE
            ) from error
        try:
            pylock = Pylock.from_dict(data)
        except PylockValidationError as error:
            raise LockError(
                f"{origin} is not a valid PEP 751 lock: {error}", path=origin, hint=_REWRITE
            ) from error
        tool = pylock.tool or {}
        table = PacksyncTable.from_dict(
            _get(tool, "packsync", dict, origin, "tool") or {}, origin
        )
        for package in pylock.packages:
            _check_source(package, origin)
        # the version as written (not re-normalised): workers report theirs the same way
        written: Sequence[Mapping[str, Any]] = data.get("packages", [])
        return cls(
            text=text,
            digest=hashlib.sha256(text.encode()).hexdigest(),
            python=table.python,
            local_wheels=tuple(
                w for w in (_local_wheel(p, origin) for p in pylock.packages) if w is not None
            ),
            versions={
                package.name: str(entry.get("version", ""))
                for package, entry in zip(pylock.packages, written, strict=True)
            },
            relaxed=table.relaxed,
            conda=table.conda,
        )

    def write(self, path: Path) -> None:
        """Write the lock to ``path``, creating its directory."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.text, encoding="utf-8")
        except OSError as error:
            raise LockError(
                f"cannot write the lock to {path}: {error.strerror or error}",
                path=str(path),
                hint="choose a writable location for the lock",
            ) from error


def render(document: Mapping[str, Any], table: PacksyncTable) -> str:
    """The text of a lock: a PEP 751 document (uv's) with ``table`` as ``[tool.packsync]``."""
    import tomli_w  # a new resolve only: a relaunch reads the lock resolved before

    return tomli_w.dumps({**document, "tool": {"packsync": table.to_dict()}})


def empty_document() -> dict[str, Any]:
    """A PEP 751 document with no package (conda provides them all)."""
    return {"lock-version": "1.0", "created-by": "packsync", "packages": []}


def check_writable(path: Path) -> None:
    """Refuse a lock path that cannot be written, before minutes of building and resolving.

    The directories that do not exist yet are created by ``Lock.write``: the nearest
    existing one must be a directory this process may write into.
    """
    hint = "choose a writable location for the lock"
    if path.is_dir():
        raise LockError(f"cannot write the lock to {path}: it is a directory", path=str(path),
                        hint=hint)
    if path.exists():
        if not os.access(path, os.W_OK):
            raise LockError(f"cannot write the lock to {path}: the file is not writable",
                            path=str(path), hint=hint)
        return
    _check_parents(path, f"cannot write the lock to {path}", hint)


def check_directory(path: Path, what: str) -> None:
    """Refuse a directory (the cache, the store) that cannot be made or written, before
    anything is built or resolved into it."""
    hint = f"choose another {what}"
    if path.exists():
        if not path.is_dir() or not os.access(path, os.W_OK | os.X_OK):
            raise LockError(f"cannot use {path} as the {what}: it is not a writable directory",
                            path=str(path), hint=hint)
        return
    _check_parents(path, f"cannot use {path} as the {what}", hint)


def _check_parents(path: Path, refusal: str, hint: str) -> None:
    """The nearest existing directory above ``path`` is one this process may write into."""
    existing = next(p for p in path.absolute().parents if p.exists())
    if not existing.is_dir():
        raise LockError(f"{refusal}: {existing} is not a directory", path=str(path), hint=hint)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise LockError(f"{refusal}: the directory {existing} is not writable",
                        path=str(path), hint=hint)


def _check_source(package: Package, origin: str) -> None:
    """Refuse the sources ``packsync lock`` never writes: installing a ``directory`` or
    ``vcs`` entry runs a build backend from wherever the lock points (local code travels
    as wheels in the store instead)."""
    kind = "directory" if package.directory is not None else (
        "vcs" if package.vcs is not None else "")
    if kind:
        raise LockError(
            f"{origin} installs {package.name} from a {kind} source, which packsync never "
            "writes: refusing to build code from wherever the lock points",
            path=origin,
            package=package.name,
            hint="write the lock with `packsync lock` (local code travels as stored wheels)",
        )


def _local_wheel(package: Package, origin: str) -> LocalWheel | None:
    """The wheel beside the lock that ``package`` is installed from, if it is one."""
    if package.archive is None or package.archive.path is None:
        return None
    path = package.archive.path
    directory, _, filename = path.partition("/")
    sha256 = package.archive.hashes.get("sha256", "")
    nested = "/" in filename or directory != WHEELS_DIR
    if nested or not filename.endswith(".whl") or not sha256:
        raise LockError(
            f"{origin} refers to a local file {path!r} that packsync did not put there",
            path=origin,
            package=package.name,
            hint="write the lock with `packsync lock`",
        )
    return LocalWheel(filename=filename, sha256=sha256)


def _relaxation(entry: object, origin: str, path: str) -> Relaxation:
    if not isinstance(entry, dict):
        raise _damaged(origin, path, f"is {_kind(entry)}, not a table")
    for key in _RELAXATION_FIELDS:
        _required(entry, key, str, origin, path)
    return Relaxation.from_dict(entry)


def _get(data: Mapping[str, Any], key: str, kind: type[_T], origin: str, table: str) -> _T | None:
    """``data[key]`` if present, checked to be a ``kind``."""
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, kind):
        raise _damaged(origin, f"{table}.{key}", f"is {_kind(value)}, not {_kind(kind)}")
    return value


def _required(data: Mapping[str, Any], key: str, kind: type[_T], origin: str, table: str) -> _T:
    value = _get(data, key, kind, origin, table)
    if value is None:
        raise _damaged(origin, f"{table}.{key}", "is missing")
    return value


def _damaged(origin: str, path: str, problem: str) -> LockError:
    return LockError(f"{origin} has a damaged [{_TABLE}] table: {path} {problem}",
                     path=origin, hint=_REWRITE)


def _kind(value: object) -> str:
    kind = value if isinstance(value, type) else type(value)
    return {str: "a string", int: "an integer", list: "an array", dict: "a table",
            bool: "a boolean", float: "a number"}.get(kind, kind.__name__)
