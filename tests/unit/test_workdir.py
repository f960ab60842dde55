"""Which files of a working directory count as importable code."""

from __future__ import annotations

import os

import dask
import pytest

from packsync.codesync.bundle import code_rules
from packsync.errors import ScanError
from packsync.scan.workdir import CodeRules, code_paths, collect_code


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


def relpaths(root, **rules):
    return [f.relpath.replace(os.sep, "/") for f in collect_code(str(root),
                                                                 rules=CodeRules(**rules))]


def test_gitignore_of_the_root_and_its_subdirectories(tmp_path):
    touch(tmp_path / ".gitignore", "# generated\nsecret_*.py\nscratch/\n!secret_ok.py\n")
    touch(tmp_path / "main.py")
    touch(tmp_path / "secret_key.py")
    touch(tmp_path / "secret_ok.py")
    touch(tmp_path / "scratch" / "try.py")
    touch(tmp_path / "pkg" / ".gitignore", "/local.py\n")
    touch(tmp_path / "pkg" / "local.py")
    touch(tmp_path / "pkg" / "deep" / "local.py")  # anchored: only pkg/local.py is ignored
    assert relpaths(tmp_path) == ["main.py", "secret_ok.py", "pkg/deep/local.py"]
    assert "secret_key.py" in relpaths(tmp_path, gitignore=False)


def test_gitignore_above_the_root_counts_inside_a_git_work_tree_only(tmp_path):
    top = tmp_path / "repo"
    touch(top / ".gitignore", "analysis/out_*.py\n")
    touch(top / "analysis" / "run.py")
    touch(top / "analysis" / "out_1.py")
    assert relpaths(top / "analysis") == ["out_1.py", "run.py"]  # not a work tree: no effect
    (top / ".git" / "info").mkdir(parents=True)
    assert relpaths(top / "analysis") == ["run.py"]
    touch(top / ".git" / "info" / "exclude", "run.py\n")
    assert relpaths(top / "analysis") == []


def test_include_ships_data_files_and_exclude_wins(tmp_path):
    touch(tmp_path / "model.py")
    touch(tmp_path / "model_test.py")
    touch(tmp_path / "data" / "table.csv")
    touch(tmp_path / "data" / "big.parquet")
    touch(tmp_path / "raw-inputs" / "part.csv")  # not a package name: reached only by include
    touch(tmp_path / "raw-inputs" / "helper.py")  # never importable from there
    touch(tmp_path / ".gitignore", "data/\n")
    touch(tmp_path / "notes" / "todo.py")
    assert relpaths(tmp_path) == ["model.py", "model_test.py", "notes/todo.py"]
    assert relpaths(tmp_path, include=("*.csv",), exclude=("*_test.py", "notes/")) == [
        "model.py", "data/table.csv", "raw-inputs/part.csv"
    ]
    assert relpaths(tmp_path, include=("data/**",), exclude=("*.parquet",)) == [
        "model.py", "model_test.py", "data/table.csv", "notes/todo.py"
    ]


def test_size_cap_error_lists_the_largest_files_first(tmp_path):
    touch(tmp_path / "a.py", "x" * 3000)
    touch(tmp_path / "b.py", "x" * 5000)
    touch(tmp_path / "c.py", "x" * 10)
    with pytest.raises(ScanError) as caught:
        collect_code(str(tmp_path), rules=CodeRules(max_bytes=4000))
    message = str(caught.value)
    assert message.index("b.py") < message.index("a.py") and "7.8 KiB" in message
    assert "over the 3.9 KiB cap" in message and "packsync.max-code-size" in message
    assert caught.value.path == str(tmp_path)


def test_rules_from_arguments_and_dask_config():
    with dask.config.set({"packsync.include": "data/*.csv, *.json",
                          "packsync.exclude": ["scratch/"], "packsync.max-code-size": "1MB"}):
        assert code_rules() == CodeRules(include=("data/*.csv", "*.json"),
                                         exclude=("scratch/",), max_bytes=1_000_000)
        assert code_rules(include=[], exclude=["x.py"]).include == ()
    with dask.config.set({"packsync.max-code-size": "lots"}), pytest.raises(ScanError):
        code_rules()


def test_negated_globs_take_back_part_of_include_and_exclude(tmp_path):
    touch(tmp_path / "model.py")
    touch(tmp_path / "model_test.py")
    touch(tmp_path / "keep_test.py")
    touch(tmp_path / "data" / "table.csv")
    touch(tmp_path / "data" / "huge.csv")
    assert relpaths(tmp_path, include=("data/*.csv", "!huge.csv"),
                    exclude=("*_test.py", "!keep_test.py")) == [
        "keep_test.py", "model.py", "data/table.csv"
    ]


def test_a_deeper_gitignore_overrides_the_root_one(tmp_path):
    touch(tmp_path / ".gitignore", "gen_*.py\n")
    touch(tmp_path / "gen_top.py")
    touch(tmp_path / "pkg" / ".gitignore", "!gen_keep.py\n")
    touch(tmp_path / "pkg" / "gen_keep.py")
    touch(tmp_path / "pkg" / "gen_drop.py")
    assert relpaths(tmp_path) == ["pkg/gen_keep.py"]


def test_a_linked_directory_inside_the_root_is_not_entered(tmp_path):
    touch(tmp_path / "pkg" / "mod.py")
    os.symlink(tmp_path / "pkg", tmp_path / "alias")
    os.symlink(tmp_path / "pkg" / "mod.py", tmp_path / "alias_mod.py")  # a file link inside
    assert relpaths(tmp_path) == ["alias_mod.py", "pkg/mod.py"]
