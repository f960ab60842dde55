"""The content-addressed store: idempotent puts, verified fetches, expiry after last use."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from packsync.errors import IntegrityError, StoreError
from packsync.store import FsspecStore, LocalStore, gc_if_due, open_store

HOUR = 3600.0


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def blob(tmp_path, content: bytes, name: str = "a.whl"):
    path = tmp_path / name
    path.write_bytes(content)
    return path, hashlib.sha256(content).hexdigest()


def test_put_is_idempotent_and_fetch_verifies(tmp_path):
    store = LocalStore(tmp_path / "store")
    source, sha = blob(tmp_path, b"wheel bytes")
    assert store.put(source, sha) is True
    assert store.put(source, sha) is False
    store.fetch(sha, tmp_path / "out" / "a.whl")
    assert (tmp_path / "out" / "a.whl").read_bytes() == b"wheel bytes"
    assert not [p for p in (tmp_path / "out").iterdir() if p.name != "a.whl"]


@pytest.mark.attack("tampered store object")
def test_tampered_object_is_refused_and_not_left_behind(tmp_path):
    store = LocalStore(tmp_path / "store")
    source, sha = blob(tmp_path, b"wheel bytes")
    store.put(source, sha)
    (tmp_path / "store" / "sha256" / sha[:2] / sha).write_bytes(b"evil bytes")
    with pytest.raises(IntegrityError) as caught:
        store.fetch(sha, tmp_path / "out" / "a.whl")
    assert caught.value.digest == sha and sha in caught.value.path
    assert list((tmp_path / "out").iterdir()) == []


def test_put_refuses_a_wrong_digest(tmp_path):
    source, _ = blob(tmp_path, b"x")
    with pytest.raises(IntegrityError):
        LocalStore(tmp_path / "s").put(source, "0" * 64)
    assert not [p for p in (tmp_path / "s").rglob("*") if p.is_file()]


def test_missing_object_bad_digest_and_unknown_scheme(tmp_path):
    with pytest.raises(StoreError, match="not in the store"):
        LocalStore(tmp_path).fetch("a" * 64, tmp_path / "x")
    with pytest.raises(StoreError, match="not a SHA-256"):
        LocalStore(tmp_path).has("../../etc/passwd")
    with pytest.raises(StoreError, match="nosuch://"):
        open_store("nosuch://host/path")


def test_open_store_picks_the_local_store_for_paths_and_file_urls(tmp_path):
    assert isinstance(open_store(tmp_path), LocalStore)
    assert isinstance(open_store(tmp_path.as_uri()), LocalStore)
    assert open_store(tmp_path.as_uri()).root == tmp_path  # type: ignore[attr-defined]
    assert isinstance(open_store("memory://packsync-test"), FsspecStore)


@pytest.mark.attack("secret echoed in an error")
def test_a_store_url_with_credentials_is_refused_without_echoing_them():
    with pytest.raises(StoreError) as caught:
        open_store("s3://AKIDEXAMPLE:sekrit-value@bucket/prefix")
    assert "sekrit-value" not in str(caught.value) + caught.value.path
    assert "AKIDEXAMPLE" not in str(caught.value) + caught.value.path


def test_objects_expire_a_day_after_their_last_use(tmp_path):
    clock = Clock()
    store = LocalStore(tmp_path / "store", clock=clock)
    old, old_sha = blob(tmp_path, b"old", "old.whl")
    used, used_sha = blob(tmp_path, b"used", "used.whl")
    store.put(old, old_sha)
    store.put(used, used_sha)
    clock.now += 20 * HOUR
    store.fetch(used_sha, tmp_path / "fetched")  # a use: its day starts again
    clock.now += 5 * HOUR

    preview = store.gc(24 * HOUR, dry_run=True)
    assert preview.removed == (old_sha,) and store.has(old_sha)
    result = store.gc(24 * HOUR)
    assert result.removed == (old_sha,) and result.removed_bytes == 3 and result.kept == 1
    assert not store.has(old_sha) and store.has(used_sha)

    clock.now += 23 * HOUR
    assert store.touch(used_sha) and not store.touch(old_sha)
    clock.now += 23 * HOUR
    assert store.gc(24 * HOUR).removed == ()


def test_a_put_of_an_existing_object_counts_as_a_use(tmp_path):
    clock = Clock()
    store = LocalStore(tmp_path / "store", clock=clock)
    path, sha = blob(tmp_path, b"x")
    store.put(path, sha)
    clock.now += 23 * HOUR
    assert store.put(path, sha) is False
    clock.now += 23 * HOUR
    assert store.gc(24 * HOUR).removed == ()


def test_abandoned_uploads_are_collected_silently(tmp_path):
    clock = Clock()
    store = LocalStore(tmp_path / "store", clock=clock)
    partial = tmp_path / "store" / "sha256" / "ab" / ".incoming-xyz"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"half")
    os.utime(partial, (clock.now, clock.now))
    clock.now += 25 * HOUR
    assert store.gc(24 * HOUR).removed == () and not partial.exists()


def test_the_automatic_pass_runs_at_most_once_an_hour(tmp_path):
    clock = Clock()
    store = LocalStore(tmp_path / "store", clock=clock)
    path, sha = blob(tmp_path, b"x")
    store.put(path, sha)
    cache = tmp_path / "cache"
    assert gc_if_due(store, cache=cache, expiry=24 * HOUR, clock=clock) is not None
    clock.now += 25 * HOUR
    assert gc_if_due(store, cache=cache, expiry=24 * HOUR, clock=clock) is not None
    assert not store.has(sha)
    store.put(path, sha)
    clock.now += 30 * 60
    assert gc_if_due(store, cache=cache, expiry=0, clock=clock) is None  # not due yet
    assert store.has(sha)
    clock.now += 31 * 60
    assert gc_if_due(store, cache=cache, expiry=0, clock=clock) is not None
    assert not store.has(sha)


def test_the_fsspec_store_keeps_the_same_promises(tmp_path):
    clock = Clock()
    store = open_store("memory://packsync-unit", clock=clock)
    assert isinstance(store, FsspecStore)
    path, sha = blob(tmp_path, b"bundle")
    assert store.put(path, sha) and not store.put(path, sha)
    store.fetch(sha, tmp_path / "copy")
    assert (tmp_path / "copy").read_bytes() == b"bundle"
    store.fs.pipe_file(f"{store.root}/sha256/{sha[:2]}/{sha}", b"evil")
    with pytest.raises(IntegrityError):
        store.fetch(sha, tmp_path / "evil")
    assert not (tmp_path / "evil").exists()
    with pytest.raises(StoreError, match="not in the store"):
        store.fetch("b" * 64, tmp_path / "none")


def test_store_gc_command_line(tmp_path):
    store = LocalStore(tmp_path / "store")
    path, sha = blob(tmp_path, b"x")
    store.put(path, sha)
    target = tmp_path / "store" / "sha256" / sha[:2] / sha
    os.utime(target, (1, 1))
    command = [sys.executable, "-m", "packsync.cli", "store", "gc", "--store",
               str(tmp_path / "store"), "--expiry", "1h"]
    dry = subprocess.run([*command, "--dry-run", "--json"], capture_output=True, text=True,
                         check=True)
    assert f'"{sha}"' in dry.stdout and target.exists()
    subprocess.run(command, capture_output=True, text=True, check=True)
    assert not target.exists()


def test_store_expiry_comes_from_argument_environment_or_config(monkeypatch):
    import dask.config

    from packsync.config import store_expiry

    monkeypatch.delenv("PACKSYNC_STORE_EXPIRY", raising=False)
    assert store_expiry() == 24 * HOUR
    with dask.config.set({"packsync.store-expiry": "36h"}):
        assert store_expiry() == 36 * HOUR
        monkeypatch.setenv("PACKSYNC_STORE_EXPIRY", "7 days")
        assert store_expiry() == 7 * 24 * HOUR
        assert store_expiry(60) == 60.0
    with pytest.raises(StoreError, match="not a duration"):
        store_expiry("soon")
