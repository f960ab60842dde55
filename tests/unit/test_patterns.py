"""Git's pattern syntax, as .gitignore files and include/exclude globs use it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from packsync.errors import ScanError
from packsync.scan.patterns import compile_globs, ignored, read_ignore_file


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
        ("\\!lit.py", "!lit.py", False, True),
        ("trail.py  ", "trail.py", False, True),  # unescaped trailing spaces are dropped
        ("build", "pkg/build", True, True),  # a name matches directories too
        ("data/**", "data/x/y.csv", False, True),
        ("**", "any/thing.py", False, True),
    ],
)
def test_pattern_matches_like_git(pattern, path, is_dir, expected):
    compiled = compile_globs([pattern])
    assert compiled is not None
    assert compiled.matches(path, is_dir=is_dir) is expected


def test_blank_lines_and_comments_are_not_patterns():
    assert compile_globs([""]) is None
    assert compile_globs(["   "]) is None
    assert compile_globs(["# comment", ""]) is None
    assert compile_globs([]) is None


def test_last_matching_pattern_decides_and_negation_reincludes():
    patterns = compile_globs(["*.py", "!keep.py", "keep.py"])
    assert ignored([patterns], "keep.py", is_dir=False)
    patterns = compile_globs(["*.py", "!keep.py"])
    assert not ignored([patterns], "keep.py", is_dir=False)
    assert ignored([patterns], "drop.py", is_dir=False)
    assert not patterns.matches("keep.py")  # the globs of include=/exclude= alike


def test_patterns_of_a_directory_apply_below_it_only():
    pattern = compile_globs(["/local.py"], base="/w/pkg")
    assert pattern.matches("/w/pkg/local.py", is_dir=False)
    assert not pattern.matches("/w/local.py", is_dir=False)
    assert not pattern.matches("/w/pkgx/local.py", is_dir=False)
    assert not pattern.matches("/w/pkg/deep/local.py", is_dir=False)


def test_the_deepest_ignore_file_with_a_matching_pattern_decides():
    top = compile_globs(["*.py", "!keep_*.py"], base="/w")
    below = compile_globs(["keep_secret.py", "!generated.py"], base="/w/pkg")
    chain = [top, below]
    assert ignored(chain, "/w/pkg/keep_secret.py", is_dir=False)  # below re-ignores
    assert not ignored(chain, "/w/pkg/generated.py", is_dir=False)  # below re-includes
    assert not ignored(chain, "/w/pkg/keep_me.py", is_dir=False)  # below has no say: top's
    assert ignored(chain, "/w/pkg/other.py", is_dir=False)
    assert not ignored(chain, "/w/keep_secret.py", is_dir=False)  # below covers pkg/ only


def test_an_invalid_glob_is_refused_by_name():
    with pytest.raises(ScanError, match="'data/\\[z-a\\].csv'"):
        compile_globs(["*.py", "data/[z-a].csv"])


def test_an_invalid_ignore_line_is_skipped_and_the_others_kept(tmp_path):
    ignore = tmp_path / ".gitignore"
    ignore.write_text("*.log\n!\n[z-a]\nscratch/\n")
    patterns = read_ignore_file(str(ignore), str(tmp_path))
    assert patterns is not None
    assert patterns.matches(str(tmp_path / "run.log"))
    assert patterns.matches(str(tmp_path / "scratch"), is_dir=True)
    assert read_ignore_file(str(tmp_path / "missing"), str(tmp_path)) is None


def test_no_pattern_to_match_imports_no_matcher(tmp_path):
    (tmp_path / "main.py").write_text("")
    code = (
        "import sys\n"
        "from packsync.scan.workdir import CodeRules, walk_code\n"
        f"assert [f.relpath for f in walk_code({str(tmp_path)!r}, CodeRules())] == ['main.py']\n"
        "assert 'pathspec' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
