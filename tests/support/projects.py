"""Small projects and wheels written by hand, for installs of every kind."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import textwrap
import zipfile
from pathlib import Path


def write(path: Path, text: str) -> Path:
    """``text``, dedented, at ``path`` (its directories made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def pyproject(name: str, version: str, requires: str, backend: str, tool: str = "") -> str:
    """A minimal ``pyproject.toml``: the project, its build system, then ``tool``."""
    return textwrap.dedent(f"""\
        [project]
        name = "{name}"
        version = "{version}"
        [build-system]
        requires = ["{requires}"]
        build-backend = "{backend}"
        """) + tool


def make_project(root: Path, name: str, body: str, version: str = "0.1.0") -> Path:
    """A src-layout hatchling project named ``name`` whose module holds ``body``."""
    module = name.replace("-", "_")
    (root / "src" / module).mkdir(parents=True)
    (root / "src" / module / "__init__.py").write_text(textwrap.dedent(body))
    (root / "pyproject.toml").write_text(pyproject(
        name, version, "hatchling", "hatchling.build",
        f'[tool.hatch.build.targets.wheel]\npackages = ["src/{module}"]\n'))
    return root


def setuptools_project(root: Path, name: str, files: dict[str, str], *, version: str = "1.0",
                       requires: str = "setuptools>=64", tool: str = "",
                       setup_py: str = "") -> Path:
    """A setuptools project: ``files`` (relative path -> text), ``tool`` appended to its
    pyproject.toml, and a ``setup.py`` if given (for extensions)."""
    write(root / "pyproject.toml", pyproject(name, version, requires, "setuptools.build_meta", tool))
    for relpath, text in files.items():
        write(root / relpath, text)
    if setup_py:
        write(root / "setup.py", setup_py)
    return root


def legacy_project(root: Path, name: str) -> Path:
    """A ``setup.py``-only project: with setuptools < 64, ``pip install -e`` makes an egg-link."""
    root.mkdir(parents=True)
    (root / f"{name}.py").write_text("VALUE = 1\n")
    (root / "setup.py").write_text(textwrap.dedent(f"""\
        from setuptools import setup
        setup(name="{name}", version="0.3.0", py_modules=["{name}"], install_requires=["six"])
        """))
    return root


def git(*args: str, cwd: Path) -> str:
    """``git args`` run in ``cwd`` as a test author (no user configuration needed); its output."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


def git_init(root: Path) -> str:
    """``root`` made a Git repository (branch ``main``) with all its files in one commit;
    that commit."""
    git("init", "-q", "-b", "main", cwd=root)
    git("add", ".", cwd=root)
    git("commit", "-q", "-m", "first", cwd=root)
    return git("rev-parse", "HEAD", cwd=root)


def make_wheel(directory: Path, name: str, version: str, tag: str = "py3-none-any",
               modules: dict[str, str] | None = None, requires: tuple[str, ...] = ()) -> Path:
    """A minimal valid wheel: metadata (with ``requires`` as Requires-Dist), ``modules``
    (path -> text; default one module that holds its ``VERSION``), RECORD."""
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    files = {
        **(modules or {f"{dist}.py": f"VERSION = {version!r}\n"}),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                            + "".join(f"Requires-Dist: {r}\n" for r in requires),
        f"{info}/WHEEL": f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text)}")
    record.append(f"{info}/RECORD,,")
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{dist}-{version}-{tag}.whl"
    with zipfile.ZipFile(target, "w") as wheel:
        for path, text in files.items():
            wheel.writestr(path, text)
        wheel.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return target
