"""Importable ``.py`` files of the working directory and other code paths.

Only what ``import`` could load travels: identifier-named modules and packages, minus
what ``.gitignore`` ignores. Data files travel only when the user names them with
``include=`` globs; ``exclude=`` globs win over everything. Virtual environments,
project directories (installed as packages instead), build outputs and hidden folders
stay home, and nothing outside a root is followed: a symlink leaving it is skipped.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from packsync.errors import ScanError
from packsync.scan.patterns import (
    Pattern,
    any_match,
    compile_globs,
    ignored,
    read_ignore_file,
)

MAX_BUNDLE_BYTES = 50 * 1024 * 1024
_SKIP_DIRS = frozenset({"__pycache__", "site-packages", "node_modules", "build", "dist"})
_MAX_EMPTY_DEPTH = 3


@dataclass(frozen=True, kw_only=True, slots=True)
class CodeFile:
    """One file that travels: where it sits under its root, and where it is on disk."""

    relpath: str
    path: str
    size: int
    mtime_ns: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class CodeRules:
    """What travels besides importable modules, what never does, and how much at most.

    ``include`` and ``exclude`` are Git-style globs relative to each code root (a glob
    without ``/`` matches a file name at any depth): ``include=["data/*.csv"]``,
    ``exclude=["scratch/", "*_test.py"]``. An explicit include beats ``.gitignore``.
    """

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    max_bytes: int = MAX_BUNDLE_BYTES
    gitignore: bool = True


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


def collect_code(
    root: str, *, rules: CodeRules | None = None, max_bytes: int | None = None
) -> tuple[CodeFile, ...]:
    """Every file of ``root`` that travels, sorted, within the size cap."""
    rules = rules or CodeRules()
    files = walk_code(root, rules)
    check_size(files, max_bytes if max_bytes is not None else rules.max_bytes, where=root)
    return files


def walk_code(root: str, rules: CodeRules) -> tuple[CodeFile, ...]:
    """The files of ``root`` that travel, without the size check (the watcher polls this)."""
    root = os.path.realpath(root)
    include = compile_globs(rules.include)
    exclude = compile_globs(rules.exclude)
    ignores: dict[str, tuple[Pattern, ...]] = {
        root: _ancestor_ignores(root) if rules.gitignore else ()
    }
    importable_dirs = {root}
    files: list[CodeFile] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel_dir = os.path.relpath(dirpath, root)
        depth = 0 if rel_dir == "." else rel_dir.count(os.sep) + 1
        patterns = ignores.pop(dirpath, ())
        if rules.gitignore and ".gitignore" in filenames:
            patterns += read_ignore_file(os.path.join(dirpath, ".gitignore"), dirpath)
        importable = dirpath in importable_dirs
        kept: list[str] = []
        for name in sorted(dirnames):
            path = os.path.join(dirpath, name)
            relpath = name if depth == 0 else os.path.join(rel_dir, name)
            if (
                name.startswith(".")
                or name in _SKIP_DIRS
                or any_match(exclude, relpath, is_dir=True)
                or _is_environment(path)
                or _is_project(path)
            ):
                continue
            code_dir = importable and name.isidentifier() and not ignored(
                patterns, path, is_dir=True
            )
            if not code_dir and not include:
                continue  # nothing importable below, and nothing asked for
            if code_dir:
                importable_dirs.add(path)
            ignores[path] = patterns
            kept.append(name)
        dirnames[:] = kept
        has_code = False
        for filename in sorted(filenames):
            path = os.path.join(dirpath, filename)
            relpath = filename if depth == 0 else os.path.join(rel_dir, filename)
            if any_match(exclude, relpath):
                continue
            if any_match(include, relpath):
                wanted = True
            else:
                stem, ext = os.path.splitext(filename)
                wanted = (
                    importable
                    and ext == ".py"
                    and stem.isidentifier()
                    and not (depth == 0 and stem == "__main__")
                    and not ignored(patterns, path, is_dir=False)
                )
            if not wanted or not _inside(os.path.realpath(path), root):
                continue
            try:
                info = os.stat(path)
            except OSError:
                continue  # removed while we walked, or a dangling link
            has_code = True
            files.append(
                CodeFile(relpath=relpath, path=path, size=info.st_size, mtime_ns=info.st_mtime_ns)
            )
        if not has_code and depth >= _MAX_EMPTY_DEPTH:
            for name in dirnames:
                ignores.pop(os.path.join(dirpath, name), None)
            dirnames[:] = []
    return tuple(files)


def check_size(files: Sequence[CodeFile], max_bytes: int, *, where: str) -> None:
    """Refuse a bundle over the cap, naming the files that make it big."""
    total = sum(f.size for f in files)
    if total <= max_bytes:
        return
    largest = sorted(files, key=lambda f: (-f.size, f.relpath))[:5]
    names = ", ".join(f"{f.relpath} ({_size(f.size)})" for f in largest)
    raise ScanError(
        f"the code in {where} is {_size(total)}, over the {_size(max_bytes)} cap; "
        f"largest files: {names}",
        path=where,
        hint="leave files out with exclude=[...] (or dask config packsync.exclude), raise "
        "the cap with dask config packsync.max-code-size, or start Python from a directory "
        "holding only your code",
    )


def _size(n: int) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _ancestor_ignores(root: str) -> tuple[Pattern, ...]:
    """Ignore rules that reach ``root`` from above: its Git work tree's, down to it."""
    chain = [root]
    while not os.path.exists(os.path.join(chain[-1], ".git")):
        parent = os.path.dirname(chain[-1])
        if parent == chain[-1]:
            return ()  # not in a Git work tree: only .gitignore files inside the root count
        chain.append(parent)
    top = chain[-1]
    patterns = read_ignore_file(os.path.join(top, ".git", "info", "exclude"), top)
    for directory in reversed(chain[1:]):  # the root's own .gitignore is read by the walk
        patterns += read_ignore_file(os.path.join(directory, ".gitignore"), directory)
    return patterns


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
