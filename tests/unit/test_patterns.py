"""Git's pattern syntax, as .gitignore files and include/exclude globs use it."""

from __future__ import annotations

import pytest

from packsync.scan.patterns import compile_globs, compile_pattern, ignored


@pytest.mark.parametrize(
    ("pattern", "path", "is_dir", "expected"),
    [
        ("*.py", "a.py", False, True),
        ("*.py", "pkg/sub/a.py", False, True),  # no slash: any depth
        ("*.py", "a.pyc", False, False),
        ("/top.py", "top.py", False, True),
        ("/top.py", "pkg/top.py", False, False),  # leading slash anchors
        ("data/*.csv", "data/x.csv", False, True),
        ("data/*.csv", "data/raw/x.csv", False, False),  # * stays in one component
        ("data/*.csv", "sub/data/x.csv", False, False),  # an inner slash anchors too
        ("data/**/*.csv", "data/x.csv", False, True),
        ("data/**/*.csv", "data/a/b/x.csv", False, True),
        ("**/cache", "a/b/cache", True, True),
        ("out/**", "out/a/b.txt", False, True),
        ("build/", "build", True, True),
        ("build/", "build", False, False),  # trailing slash: directories only
        ("file[0-9].py", "file7.py", False, True),
        ("file[!0-9].py", "file7.py", False, False),
        ("?.py", "ab.py", False, False),
        ("\\#lit.py", "#lit.py", False, True),
    ],
)
def test_pattern_matches_like_git(pattern, path, is_dir, expected):
    compiled = compile_pattern(pattern)
    assert compiled is not None
    assert compiled.matches(path, is_dir=is_dir) is expected


def test_blank_lines_and_comments_are_not_patterns():
    assert compile_pattern("") is None
    assert compile_pattern("   ") is None
    assert compile_pattern("# comment") is None


def test_last_matching_pattern_decides_and_negation_reincludes():
    patterns = compile_globs(["*.py", "!keep.py", "keep.py"])
    assert ignored(patterns, "keep.py", is_dir=False)
    patterns = compile_globs(["*.py", "!keep.py"])
    assert not ignored(patterns, "keep.py", is_dir=False)
    assert ignored(patterns, "drop.py", is_dir=False)


def test_patterns_of_a_directory_apply_below_it_only():
    [pattern] = compile_globs(["/local.py"], base="/w/pkg")
    assert pattern.matches("/w/pkg/local.py", is_dir=False)
    assert not pattern.matches("/w/local.py", is_dir=False)
    assert not pattern.matches("/w/pkg/deep/local.py", is_dir=False)
