"""Archive chunks in a host's own store outlive a launch while another launch of the same
environment on the host still receives, keeps or serves them, and go with the last one."""

from __future__ import annotations

import io
import json
import os
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from packsync.hostside import chunkuse, layout, main, peers, protocol
from tests.unit.test_hostside_prepare import archive, events, header

A, B = "a" * 64, "b" * 64


@pytest.fixture
def store(tmp_path: Path) -> str:
    for sha256 in (A, B):
        path = Path(layout.blob_path(str(tmp_path), sha256))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(sha256.encode())
    return str(tmp_path)


def present(store: str) -> set[str]:
    return {s for s in (A, B) if os.path.exists(layout.blob_path(store, s))}


def test_chunks_in_use_elsewhere_stay_until_the_last_user_is_done(store: str) -> None:
    with chunkuse.using(store):  # another launch receives or serves them
        chunkuse.release(store, [A, B])
        assert present(store) == {A, B}
    chunkuse.release(store, [])
    assert present(store) == set()
    assert not os.path.exists(os.path.join(store, chunkuse.UNUSED))


def test_chunks_kept_for_a_launch_stay_until_it_is_done_with_them(store: str) -> None:
    chunkuse.keep(store, "launch-secret", [A])
    chunkuse.release(store, [A, B])
    assert present(store) == {A}
    assert not any("launch-secret" in name for name in os.listdir(store))
    chunkuse.release(store, [A], launch="launch-secret")
    assert present(store) == set()


def test_the_kept_chunks_of_a_crashed_launch_do_not_stay_forever(store: str) -> None:
    chunkuse.keep(store, "crashed", [A, B])
    [kept] = [n for n in os.listdir(store) if n.startswith(chunkuse.KEPT_PREFIX)]
    old = time.time() - chunkuse.KEPT_AGE - 1
    os.utime(os.path.join(store, kept), (old, old))
    chunkuse.release(store, [A, B])
    assert present(store) == set()


def test_a_launch_ending_on_a_host_leaves_another_launchs_peer_serving(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSH_CONNECTION", raising=False)
    manifest, chunks = archive(tmp_path)
    cache = tmp_path / "host-cache"
    kept: dict[str, Any] = {**json.loads(header(cache, manifest, chunks)),
                            "keep_chunks": True, "token": "serving-launch"}
    assert main.serve(io.BytesIO(json.dumps(kept).encode() + b"\n" + b"".join(chunks))) == 0
    shas = [c["sha256"] for c in manifest["chunks"]]
    files = [layout.blob_path(str(cache / "store"), s) for s in shas]
    assert all(os.path.exists(f) for f in files)
    capsys.readouterr()

    read_end, write_end = os.pipe()
    serve: protocol.Header = {"version": protocol.VERSION, "action": "serve",
                              "cache": str(cache), "store": "", "chunks": shas,
                              "token": "serving-launch"}
    os.write(write_end, json.dumps(serve).encode() + b"\n")
    with os.fdopen(read_end, "rb") as stdin:
        server = threading.Thread(target=main.serve, args=(stdin,))
        server.start()
        try:
            url = _serving_url(capsys)
            # another launch of the same environment on this host is done with the chunks
            other = io.BytesIO(header(cache, manifest, chunks) + b"".join(chunks))
            assert main.serve(other) == 0
            assert all(os.path.exists(f) for f in files)
            request = urllib.request.Request(peers.chunk_url(url, shas[0]),
                                             headers={"Authorization": "Bearer serving-launch"})
            with urllib.request.urlopen(request, timeout=10) as answer:
                assert answer.read() == chunks[0]
        finally:
            os.close(write_end)
            server.join(timeout=30)
    assert not server.is_alive()
    assert not any(os.path.exists(f) for f in files)


def _serving_url(capsys: pytest.CaptureFixture[str]) -> str:
    for _ in range(200):
        for event in events(capsys.readouterr().out):
            if event["event"] == "serving":
                return str(event["url"])
        time.sleep(0.05)
    raise AssertionError("the host never served")


def test_releasing_chunks_that_never_arrived_is_nothing(tmp_path: Path) -> None:
    chunkuse.release(str(tmp_path / "no-store"), [A], launch="never-served")
    assert not (tmp_path / "no-store").exists()
