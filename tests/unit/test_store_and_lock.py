"""The content-addressed store refuses altered objects; foreign locks are refused."""

from __future__ import annotations

import hashlib

import pytest

from packsync.errors import IntegrityError, LockError, StoreError
from packsync.lock import Lock
from packsync.store import LocalStore, open_store


def test_put_is_idempotent_and_fetch_verifies(tmp_path):
    store = LocalStore(tmp_path / "store")
    source = tmp_path / "a.whl"
    source.write_bytes(b"wheel bytes")
    sha = hashlib.sha256(b"wheel bytes").hexdigest()
    assert store.put(source, sha) is True
    assert store.put(source, sha) is False
    store.fetch(sha, tmp_path / "out" / "a.whl")
    assert (tmp_path / "out" / "a.whl").read_bytes() == b"wheel bytes"


def test_tampered_object_is_refused_and_not_left_behind(tmp_path):
    store = LocalStore(tmp_path / "store")
    source = tmp_path / "a.whl"
    source.write_bytes(b"wheel bytes")
    sha = hashlib.sha256(b"wheel bytes").hexdigest()
    store.put(source, sha)
    (tmp_path / "store" / "sha256" / sha[:2] / sha).write_bytes(b"evil bytes")
    with pytest.raises(IntegrityError) as caught:
        store.fetch(sha, tmp_path / "out.whl")
    assert sha in caught.value.digest and not (tmp_path / "out.whl").exists()


def test_put_refuses_a_wrong_digest(tmp_path):
    source = tmp_path / "a.whl"
    source.write_bytes(b"x")
    with pytest.raises(IntegrityError):
        LocalStore(tmp_path / "s").put(source, "0" * 64)
    assert not any((tmp_path / "s").rglob("0" * 64))


def test_missing_object_and_unsupported_url(tmp_path):
    with pytest.raises(StoreError, match="not in the store"):
        LocalStore(tmp_path).fetch("a" * 64, tmp_path / "x")
    with pytest.raises(StoreError, match="ftp://"):
        open_store("ftp://host/path")


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


def test_lock_reads_its_local_wheels_and_digest():
    lock = Lock.from_text(GOOD)
    assert lock.python == "3.11.7" and lock.package_count == 1
    assert lock.local_wheels[0].filename == "mine-0.1-py3-none-any.whl"
    assert lock.digest == hashlib.sha256(GOOD.encode()).hexdigest()


@pytest.mark.parametrize("text, message", [
    ("not = [toml", "not valid TOML"),
    ('lock-version = "1.0"\ncreated-by = "x"\npackages = "nope"\n', "not a valid PEP 751"),
    (GOOD.split("[tool.packsync]")[0], "not written by packsync"),
    (GOOD.replace("wheels/mine", "../../etc/mine"), "did not put there"),
])
def test_foreign_or_damaged_locks_are_refused(text, message):
    with pytest.raises(LockError, match=message):
        Lock.from_text(text, "given.toml")
