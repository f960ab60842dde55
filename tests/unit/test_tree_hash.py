"""A local project's source hash changes with its code, and only with its code."""

from __future__ import annotations

import subprocess

from packsync.build.treehash import tree_hash


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def project(root):
    write(root / "pyproject.toml", "[project]\nname = 'p'\n")
    write(root / "src" / "p" / "__init__.py", "X = 1\n")
    write(root / "src" / "p" / "build" / "__init__.py", "# a subpackage named build\n")
    return root


def test_outputs_and_environments_do_not_count(tmp_path):
    root = project(tmp_path / "p")
    before = tree_hash(root)
    write(root / "build" / "lib" / "p.py", "old build output")
    write(root / "dist" / "p-1.whl", "x")
    write(root / ".venv-x" / "pyvenv.cfg", "home = /usr")
    write(root / ".venv-x" / "lib" / "big.py", "x")
    write(root / "src" / "p" / "__pycache__" / "m.cpython-311.pyc", "x")
    write(root / "p.egg-info" / "PKG-INFO", "x")
    assert tree_hash(root) == before
    write(root / "src" / "p" / "build" / "__init__.py", "# changed\n")
    assert tree_hash(root) != before


def test_gitignore_is_honoured_in_a_git_work_tree(tmp_path):
    root = project(tmp_path / "p")
    write(root / ".gitignore", "scratch/\n")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    before = tree_hash(root)
    write(root / "scratch" / "notes.py", "ignored")
    assert tree_hash(root) == before
    write(root / "src" / "p" / "new.py", "untracked, not ignored\n")
    assert tree_hash(root) != before
