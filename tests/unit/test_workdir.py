"""Which files of a working directory count as importable code."""

from __future__ import annotations

import os

import pytest

from packsync.errors import ScanError
from packsync.scan.workdir import code_paths, collect_code


def touch(path, text="x = 1\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_only_importable_modules_and_packages(tmp_path):
    touch(tmp_path / "analysis.py")
    touch(tmp_path / "__main__.py")
    touch(tmp_path / "not-a-module.py")
    touch(tmp_path / "data.csv")
    touch(tmp_path / "pkg" / "__init__.py")
    touch(tmp_path / "pkg" / "sub" / "mod.py")
    touch(tmp_path / ".hidden" / "secret.py")
    touch(tmp_path / "venv" / "pyvenv.cfg")
    touch(tmp_path / "venv" / "lib.py")
    touch(tmp_path / "myproject" / "pyproject.toml")
    touch(tmp_path / "myproject" / "src.py")
    touch(tmp_path / "pkg" / "__pycache__" / "mod.py")
    files = [f.relpath for f in collect_code(str(tmp_path))]
    assert files == ["analysis.py", os.path.join("pkg", "__init__.py"),
                     os.path.join("pkg", "sub", "mod.py")]


def test_symlinks_leaving_the_root_are_not_followed(tmp_path):
    outside = tmp_path / "outside"
    touch(outside / "leak.py")
    root = tmp_path / "root"
    touch(root / "ok.py")
    os.symlink(outside / "leak.py", root / "leak.py")
    os.symlink(outside, root / "linked")
    assert [f.relpath for f in collect_code(str(root))] == ["ok.py"]


def test_size_cap_names_the_largest_files(tmp_path):
    touch(tmp_path / "big.py", "x" * 4000)
    touch(tmp_path / "small.py")
    with pytest.raises(ScanError, match="big.py"):
        collect_code(str(tmp_path), max_bytes=1000)


def test_code_paths_skip_environments_and_editable_project_dirs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = tmp_path / "env"
    touch(env / "pyvenv.cfg")
    (env / "lib").mkdir()
    project_src = tmp_path / "proj" / "src"
    project_src.mkdir(parents=True)
    extra = tmp_path / "extra"
    extra.mkdir()
    paths = code_paths(["", str(env / "lib"), str(project_src), str(extra)],
                       prefixes=[str(env)], exclude=[str(tmp_path / "proj")])
    assert paths == (str(tmp_path.resolve()), str(extra.resolve()))
