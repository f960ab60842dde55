"""A hash of a project's source tree: an unchanged project is neither rebuilt nor uploaded.

The files hashed are those that make the project (Git's view when it is a work tree),
not build outputs, VCS folders or environments inside it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from packsync.errors import BuildError
from packsync.store import sha256_file

_SKIPPED_DIRS = frozenset(
    {".git", ".hg", ".svn", "__pycache__", ".venv", ".tox", ".nox", "node_modules",
     ".mypy_cache", ".pytest_cache", ".ruff_cache", ".eggs"}
)
_BUILD_OUTPUTS = frozenset({"build", "dist"})  # only at the top of a project


def tree_hash(root: Path, package: str = "") -> str:
    """A hash of a source tree's file names and contents.

    Inside a Git work tree the files are those Git would consider (tracked, or untracked
    and not ignored), so ``.gitignore`` is honoured; build outputs, VCS folders and
    environments are skipped in any case.
    """
    if not root.is_dir():
        raise BuildError(
            f"the source directory of {package or root} is gone: {root}",
            package=package,
            path=str(root),
            hint="restore the directory, reinstall the package, or ignore it",
        )
    digest = hashlib.sha256()
    for relpath in _source_files(root):
        digest.update(os.fsencode(relpath) + b"\0")
        digest.update(sha256_file(root / relpath).encode())
    return digest.hexdigest()


def _source_files(root: Path) -> list[str]:
    try:
        listed = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others",
             "--exclude-standard", "--", "."],
            capture_output=True,
            check=False,
        )
    except OSError:  # no git on this machine
        listed = subprocess.CompletedProcess([], 1, b"", b"")
    if listed.returncode == 0:
        names = [os.fsdecode(n) for n in listed.stdout.split(b"\0") if n]
        return sorted(n for n in names if not _skipped(Path(n)) and (root / n).is_file())
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        top = Path(dirpath) == root
        dirnames[:] = [
            d for d in dirnames
            if not _skipped(Path(d))
            and not (top and d in _BUILD_OUTPUTS)
            and not _is_environment(Path(dirpath, d))
        ]
        found += [str(Path(dirpath, f).relative_to(root)) for f in filenames
                  if not _skipped(Path(f))]
    return sorted(found)


def _skipped(relpath: Path) -> bool:
    return any(part in _SKIPPED_DIRS or part.endswith(".egg-info") for part in relpath.parts) or (
        relpath.suffix in (".pyc", ".pyo")
    )


def _is_environment(path: Path) -> bool:
    return (path / "pyvenv.cfg").exists() or (path / "conda-meta").is_dir()
