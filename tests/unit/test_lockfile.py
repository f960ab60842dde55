"""The lock file: foreign or damaged locks are refused naming file and field; a lock names
its local wheels and its digest; it is written wherever asked, or refused before resolving."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from packsync.cli import main
from packsync.conda.locked import CondaLock, LockedCondaPackage
from packsync.errors import LockError
from packsync.lock.lockfile import Lock, PacksyncTable, check_writable, empty_document, render
from packsync.model import Relaxation

GOOD = """lock-version = "1.0"
created-by = "uv"

[[packages]]
name = "mine"
version = "0.1"
archive = { path = "wheels/mine-0.1-py3-none-any.whl", hashes = { sha256 = "%s" } }

[tool.packsync]
format = 1
python = "3.11.7"
""" % ("ab" * 32)
PEP751_PART = GOOD.split("[tool.packsync]")[0]


def test_lock_reads_its_local_wheels_and_digest():
    lock = Lock.from_text(GOOD)
    assert lock.python == "3.11.7" and lock.package_count == 1
    assert lock.local_wheels[0].filename == "mine-0.1-py3-none-any.whl"
    assert lock.digest == hashlib.sha256(GOOD.encode()).hexdigest()


def test_what_packsync_writes_it_reads_back():
    relaxed = Relaxation(name="probe", local_version="1.2.3", specifier="~=1.2.0",
                         version="1.2.0", reason="probe 1.2.3 has no wheel for linux-x86_64")
    conda = CondaLock(subdir="linux-64", channels=("https://conda.example/main",), packages=(
        LockedCondaPackage(name="python", version="3.11.7", build="h1", build_number=0,
                           subdir="linux-64", channel="main", url="https://conda.example/p",
                           file_name="python-3.11.7-h1.conda", sha256="0" * 64),))
    document = empty_document() | {"packages": [
        {"name": "probe", "version": "1.2.0",
         "wheels": [{"url": "https://x/probe-1.2.0-py3-none-any.whl",
                     "hashes": {"sha256": "1" * 64}}]}]}
    text = render(document, PacksyncTable(python="3.11.7", target="linux-x86_64",
                                          uv_platform="x86_64-manylinux_2_28",
                                          relaxed=(relaxed,), conda=conda))
    lock = Lock.from_text(text)
    assert (lock.python, dict(lock.versions)) == ("3.11.7", {"probe": "1.2.0"})
    assert lock.relaxed == (relaxed,) and lock.conda == conda and lock.local_wheels == ()
    assert render(document, PacksyncTable(python="3.11.7")) != text  # the table is in the digest


def test_versions_are_kept_as_written():
    """Workers report the version text of their metadata: the lock's is not re-normalised."""
    text = GOOD.replace('version = "0.1"', 'version = "0.1-1"')
    assert Lock.from_text(text).versions == {"mine": "0.1-1"}


@pytest.mark.attack("hostile lock")
@pytest.mark.parametrize("text, message", [
    ("not = [toml", "not valid TOML"),
    ('lock-version = "1.0"\ncreated-by = "x"\npackages = "nope"\n', "not a valid PEP 751"),
    (GOOD.replace('name = "mine"', 'name = "Mine"'), r"not normalized in 'packages\[0\].name'"),
    (PEP751_PART, "not written by packsync"),
    (GOOD.replace("format = 1", "format = 2"), "not written by packsync"),
    (GOOD.replace("wheels/mine", "../../etc/mine"), "did not put there"),
    (GOOD.replace('python = "3.11.7"', "python = 3.11"),
     r"\[tool.packsync\] table: tool.packsync.python is a number, not a string"),
    (GOOD.replace('python = "3.11.7"', 'python = ""'), "tool.packsync.python is empty"),
    (GOOD.replace('python = "3.11.7"', ""), "tool.packsync.python is missing"),
    (GOOD + 'relaxed = "probe"\n', "tool.packsync.relaxed is a string, not an array"),
    (GOOD + 'relaxed = [1]\n', r"tool.packsync.relaxed\[0\] is an integer, not a table"),
    (GOOD + 'relaxed = [{name = "probe", local-version = "1", specifier = "~=1.0", '
            'version = "1.0"}]\n', r"tool.packsync.relaxed\[0\].reason is missing"),
    (GOOD + 'target = ["linux"]\n', "tool.packsync.target is an array, not a string"),
    (GOOD + "conda = 1\n", "tool.packsync.conda is an integer, not a table"),
    (GOOD + '[tool.packsync.conda]\nsubdir = "linux-64"\n', r"damaged \[tool.packsync.conda\]"),
    (PEP751_PART + "[tool]\npacksync = 1\n", "tool.packsync is an integer, not a table"),
])
def test_foreign_or_damaged_locks_are_refused_naming_file_and_field(text, message):
    with pytest.raises(LockError, match=message) as refused:
        Lock.from_text(text, "given.toml")
    assert refused.value.path == "given.toml" and "given.toml" in refused.value.message


def test_write_creates_the_directories_of_the_lock(tmp_path: Path):
    target = tmp_path / "out" / "deeper" / "pylock.toml"
    check_writable(target)
    assert not (tmp_path / "out").exists()  # checking creates nothing
    Lock.from_text(GOOD).write(target)
    assert target.read_text(encoding="utf-8") == GOOD


def test_an_unwritable_location_is_named(tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for target in (blocker / "out" / "pylock.toml", tmp_path):
        with pytest.raises(LockError, match="cannot write the lock to") as refused:
            check_writable(target)
        assert refused.value.path == str(target)
    with pytest.raises(LockError, match=f"cannot write the lock to {blocker}/pylock.toml"):
        Lock.from_text(GOOD).write(blocker / "pylock.toml")


def test_cli_refuses_an_unwritable_output_before_resolving(tmp_path: Path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    cache = tmp_path / "cache"
    output = blocker / "out" / "pylock.toml"
    assert main(["lock", "-o", str(output), "--cache-dir", str(cache)]) == 2
    error = capsys.readouterr().err
    assert str(output) in error and f"{blocker} is not a directory" in " ".join(error.split())
    assert not cache.exists()  # nothing was built, stored or resolved


def test_an_unusable_cache_or_store_directory_is_named(tmp_path: Path):
    from packsync.lock.lockfile import check_directory

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for directory in (blocker, blocker / "below"):
        with pytest.raises(LockError, match=f"cannot use {directory} as the store") as refused:
            check_directory(directory, "store")
        assert refused.value.path == str(directory)
    check_directory(tmp_path / "new" / "cache", "cache")  # made later, by whoever uses it
    assert not (tmp_path / "new").exists()
