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
from packsync.scan.patterns import Patterns, compile_globs, ignored, matches, read_ignore_file

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
    ``exclude=["scratch/", "*_test.py"]``; as in a ``.gitignore``, the last glob that
    matches decides, so ``"!keep_test.py"`` after them takes it back. An explicit include
    beats ``.gitignore``.
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
    walk = _Walk(
        root=root,
        rules=rules,
        include=compile_globs(rules.include),
        exclude=compile_globs(rules.exclude),
    )
    walk.directory(root, "", (_ancestor_ignores(root) if rules.gitignore else ()), True)
    return tuple(walk.files)


class _Walk:
    """One walk of a root, top-down and sorted as ``os.walk`` goes, never into a link.

    ``os.scandir`` tells links and directories apart without a system call per entry,
    so only a link pays for resolving where it leads.
    """

    def __init__(
        self, *, root: str, rules: CodeRules, include: Patterns | None, exclude: Patterns | None
    ) -> None:
        self.root = root
        self.rules = rules
        self.include = include
        self.exclude = exclude
        self.files: list[CodeFile] = []

    def directory(
        self, path: str, rel_dir: str, ignores: tuple[Patterns, ...], importable: bool
    ) -> None:
        try:
            with os.scandir(path) as scan:
                entries = list(scan)
        except OSError:
            return  # removed while we walked, or unreadable: as os.walk does
        dirs: dict[str, os.DirEntry[str]] = {}
        others: dict[str, os.DirEntry[str]] = {}
        for entry in entries:
            (dirs if _is_dir(entry) else others)[entry.name] = entry
        if self.rules.gitignore and ".gitignore" in others:
            own = read_ignore_file(os.path.join(path, ".gitignore"), path)
            ignores = ignores + (own,) if own is not None else ignores
        subdirs = self._subdirectories(path, rel_dir, dirs, ignores, importable)
        has_code = self._files(path, rel_dir, others, ignores, importable)
        depth = rel_dir.count(os.sep) + 1 if rel_dir else 0
        if not has_code and depth >= _MAX_EMPTY_DEPTH:
            return
        for name, code_dir in subdirs:
            if not dirs[name].is_symlink():  # a linked directory is listed, never entered
                self.directory(
                    os.path.join(path, name), os.path.join(rel_dir, name), ignores, code_dir
                )

    def _subdirectories(
        self,
        path: str,
        rel_dir: str,
        dirs: dict[str, os.DirEntry[str]],
        ignores: tuple[Patterns, ...],
        importable: bool,
    ) -> list[tuple[str, bool]]:
        """The directories to walk into, and whether each holds importable code."""
        kept = []
        for name in sorted(dirs):
            full = os.path.join(path, name)
            relpath = os.path.join(rel_dir, name)
            if (
                name.startswith(".")
                or name in _SKIP_DIRS
                or matches(self.exclude, relpath, is_dir=True)
                or _is_environment(full)
                or _is_project(full)
            ):
                continue
            code_dir = importable and name.isidentifier() and not ignored(
                ignores, full, is_dir=True
            )
            if code_dir or self.include is not None:  # else nothing below is asked for
                kept.append((name, code_dir))
        return kept

    def _files(
        self,
        path: str,
        rel_dir: str,
        others: dict[str, os.DirEntry[str]],
        ignores: tuple[Patterns, ...],
        importable: bool,
    ) -> bool:
        """Add the files of one directory that travel; whether there was any."""
        top = not rel_dir
        found = False
        for name in sorted(others):
            full = os.path.join(path, name)
            relpath = os.path.join(rel_dir, name)
            if matches(self.exclude, relpath):
                continue
            if not matches(self.include, relpath):
                stem, ext = os.path.splitext(name)
                if not (
                    importable
                    and ext == ".py"
                    and stem.isidentifier()
                    and not (top and stem == "__main__")
                    and not ignored(ignores, full, is_dir=False)
                ):
                    continue
            entry = others[name]
            if entry.is_symlink() and not _inside(os.path.realpath(full), self.root):
                continue
            try:
                info = entry.stat()
            except OSError:
                continue  # removed while we walked, or a dangling link
            found = True
            self.files.append(
                CodeFile(relpath=relpath, path=full, size=info.st_size, mtime_ns=info.st_mtime_ns)
            )
        return found


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()  # a link to a directory counts, as in os.walk
    except OSError:
        return False


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


def _ancestor_ignores(root: str) -> tuple[Patterns, ...]:
    """Ignore rules that reach ``root`` from above: its Git work tree's, down to it."""
    chain = [root]
    while not os.path.exists(os.path.join(chain[-1], ".git")):
        parent = os.path.dirname(chain[-1])
        if parent == chain[-1]:
            return ()  # not in a Git work tree: only .gitignore files inside the root count
        chain.append(parent)
    top = chain[-1]
    found = [read_ignore_file(os.path.join(top, ".git", "info", "exclude"), top)]
    for directory in reversed(chain[1:]):  # the root's own .gitignore is read by the walk
        found.append(read_ignore_file(os.path.join(directory, ".gitignore"), directory))
    return tuple(p for p in found if p is not None)


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
