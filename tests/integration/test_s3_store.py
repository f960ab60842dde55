"""The store on S3: a real moto server on loopback, reached the way users configure it."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time

import pytest

from packsync.errors import IntegrityError
from packsync.store import FsspecStore, open_store

HOUR = 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_s3_store_puts_once_verifies_and_expires(s3_endpoint, tmp_path):
    clock = Clock()
    store = open_store("s3://packsync/artifacts",
                       storage_options={"endpoint_url": s3_endpoint, "skip_instance_cache": True},
                       clock=clock)
    assert isinstance(store, FsspecStore)
    wheel = tmp_path / "w.whl"
    wheel.write_bytes(b"a wheel")
    sha = hashlib.sha256(b"a wheel").hexdigest()
    other = tmp_path / "o.whl"
    other.write_bytes(b"another")
    other_sha = hashlib.sha256(b"another").hexdigest()

    assert store.put(wheel, sha) is True
    assert store.put(wheel, sha) is False  # already there: no upload
    assert store.put(other, other_sha) is True
    store.fetch(sha, tmp_path / "got" / "w.whl")
    assert (tmp_path / "got" / "w.whl").read_bytes() == b"a wheel"

    store.fs.pipe_file(f"packsync/artifacts/sha256/{sha[:2]}/{sha}", b"tampered")
    with pytest.raises(IntegrityError) as caught:
        store.fetch(sha, tmp_path / "bad" / "w.whl")
    assert sha in str(caught.value) and not (tmp_path / "bad" / "w.whl").exists()

    # Times of use are the server's; the injected clock says when "now" is.
    assert store.gc(24 * HOUR).removed == ()
    clock.now += 25 * HOUR
    assert set(store.gc(24 * HOUR, dry_run=True).removed) == {sha, other_sha}
    assert store.has(sha) and store.has(other_sha)
    assert set(store.gc(24 * HOUR).removed) == {sha, other_sha}
    assert not store.has(sha) and not store.touch(other_sha)
    assert store.fs.find("packsync/artifacts") == []  # use markers went with their objects

    clock.now -= 25 * HOUR
    assert store.put(other, other_sha) is True  # stored again after expiry
    assert store.gc(24 * HOUR).removed == () and store.has(other_sha)


def test_endpoint_from_fsspec_environment_in_a_fresh_process(s3_endpoint, tmp_path):
    """Users configure the endpoint as fsspec does; the URL carries no secret and no endpoint."""
    wheel = tmp_path / "w.whl"
    wheel.write_bytes(b"through the environment")
    code = f"""
import hashlib, pathlib
from packsync.store import open_store
store = open_store("s3://packsync/env-configured")
path = pathlib.Path({str(wheel)!r})
sha = hashlib.sha256(path.read_bytes()).hexdigest()
print(store.put(path, sha), store.put(path, sha), store.has(sha))
"""
    for variable in ("FSSPEC_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL"):
        env = {**os.environ, variable: s3_endpoint}
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        first = "True" if variable == "FSSPEC_S3_ENDPOINT_URL" else "False"
        assert result.stdout.split() == [first, "False", "True"], variable
