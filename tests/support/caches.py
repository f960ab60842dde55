"""Environments in a packsync cache for tests: built by a stand-in that writes only a lock,
made ready with the real marker."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from packsync.hostside import contents, layout

LOCK_TEXT = "# a stand-in lock\n"
DIGEST = hashlib.sha256(LOCK_TEXT.encode()).hexdigest()


def digest_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def build_lock_only(path: str, text: str = LOCK_TEXT) -> None:
    """A build that makes an environment holding nothing but its lock."""
    record = Path(path, layout.RECORD_DIR)
    record.mkdir(parents=True)
    (record / "pylock.toml").write_text(text)


def make_ready(path: Path, text: str = LOCK_TEXT, used: float | None = None) -> str:
    """Mark the directory ``path`` ready as a build does, holding the lock ``text``; its
    digest. ``used``: the time of its last use."""
    record = path / layout.RECORD_DIR
    record.mkdir(parents=True, exist_ok=True)
    (record / "pylock.toml").write_text(text)
    contents.mark_ready(str(path), digest_of(text))
    if used is not None:
        os.utime(path / layout.READY_MARKER, (used, used))
    return digest_of(text)


def small_lock_text(directory: Path) -> str:
    """The text of a packsync lock of httpx and its dependencies for this Python (resolved
    by uv from PyPI in ``directory``): a real environment of a few seconds' build."""
    import subprocess
    import sys

    from packsync.lock.lockfile import PacksyncTable, render
    from tests.support.venvs import UV, hermetic_env

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    (directory / "req.txt").write_text("httpx==0.27.2\n")
    python = ".".join(map(str, sys.version_info[:3]))
    subprocess.run([UV, "pip", "compile", "-q", str(directory / "req.txt"), "--format",
                    "pylock.toml", "--python-version", python, "-o",
                    str(directory / "pylock.uv.toml")],
                   check=True, env=hermetic_env(), cwd=directory)
    document = tomllib.loads((directory / "pylock.uv.toml").read_text())
    return render(document, PacksyncTable(python=python))
