"""Importable ``.py`` files of the working directory and other code paths.

Only what ``import`` could load travels: identifier-named modules and packages.
Data files, virtual environments, build outputs and hidden folders stay home, and
nothing outside a root is followed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass

from packsync.errors import ScanError

MAX_BUNDLE_BYTES = 50 * 1024 * 1024
_SKIP_DIRS = frozenset({"__pycache__", "site-packages", "node_modules", "build", "dist"})
_MAX_EMPTY_DEPTH = 3


@dataclass(frozen=True, kw_only=True, slots=True)
class CodeFile:
    """One importable file: where it sits under its root, and where it is on disk."""

    relpath: str
    path: str
    size: int


def code_paths(
    sys_path: Iterable[str], *, prefixes: Iterable[str], exclude: Iterable[str]
) -> tuple[str, ...]:
    """The ``sys.path`` entries that hold the user's own code rather than installs."""
    owned = tuple(os.path.realpath(p) for p in prefixes if p)
    projects = tuple(os.path.realpath(p) for p in exclude if p)
    cwd = os.path.realpath(os.getcwd())
    result: list[str] = []
    for entry in sys_path:
        path = os.path.realpath(entry or cwd)
        if not os.path.isdir(path) or path in result:
            continue
        if any(_inside(path, root) for root in owned):
            continue
        if path != cwd and any(_inside(path, project) for project in projects):
            continue  # put on sys.path by an editable install: it travels as a wheel
        if _is_environment(path):
            continue
        result.append(path)
    return tuple(result)


def collect_code(root: str, *, max_bytes: int = MAX_BUNDLE_BYTES) -> tuple[CodeFile, ...]:
    """Every importable ``.py`` file below ``root``, sorted, within the size cap."""
    files: list[CodeFile] = []
    root = os.path.realpath(root)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel_dir = os.path.relpath(dirpath, root)
        depth = 0 if rel_dir == "." else rel_dir.count(os.sep) + 1
        dirnames[:] = sorted(
            d
            for d in dirnames
            if d.isidentifier()
            and d not in _SKIP_DIRS
            and not _is_environment(os.path.join(dirpath, d))
            and not _is_project(os.path.join(dirpath, d))
        )
        has_code = False
        for filename in sorted(filenames):
            stem, ext = os.path.splitext(filename)
            if ext != ".py" or not stem.isidentifier() or (depth == 0 and stem == "__main__"):
                continue
            path = os.path.join(dirpath, filename)
            if not _inside(os.path.realpath(path), root):
                continue
            has_code = True
            relpath = filename if depth == 0 else os.path.join(rel_dir, filename)
            files.append(CodeFile(relpath=relpath, path=path, size=os.path.getsize(path)))
        if not has_code and depth >= _MAX_EMPTY_DEPTH:
            dirnames[:] = []
    total = sum(f.size for f in files)
    if total > max_bytes:
        largest = sorted(files, key=lambda f: f.size, reverse=True)[:5]
        names = ", ".join(f"{f.relpath} ({f.size // 1024} KiB)" for f in largest)
        raise ScanError(
            f"the code in {root} is {total // (1024 * 1024)} MiB, over the "
            f"{max_bytes // (1024 * 1024)} MiB cap; largest files: {names}",
            path=root,
            hint="move large generated modules out of the working directory, "
            "or start Python from a directory holding only your code",
        )
    return tuple(files)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _is_environment(path: str) -> bool:
    return os.path.exists(os.path.join(path, "pyvenv.cfg")) or os.path.isdir(
        os.path.join(path, "conda-meta")
    )


def _is_project(path: str) -> bool:
    """A project directory is installed as a package, not shipped as loose code."""
    return any(os.path.exists(os.path.join(path, f)) for f in ("pyproject.toml", "setup.py"))


def stdlib_paths() -> tuple[str, ...]:
    """Directories of the interpreter itself, never user code."""
    return (sys.base_prefix, sys.base_exec_prefix, sys.prefix, sys.exec_prefix)
