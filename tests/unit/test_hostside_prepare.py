"""A host's ``prepare`` in artifact mode: the archive is unpacked while its chunks still
arrive on stdin, the client hears ``received`` before ``done``, and a chunk altered in
transit leaves nothing behind."""

from __future__ import annotations

import io
import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from packsync.hostside import artifact, layout, main, protocol, resources
from tests.unit.test_artifact import fake_environment

pytestmark = pytest.mark.usefixtures("small_chunks")


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(artifact, "CHUNK_BYTES", 64 * 1024)


def archive(tmp_path: Path) -> tuple[dict[str, Any], list[bytes]]:
    here = resources.interpreter()
    env = fake_environment(tmp_path / "built")
    manifest = artifact.pack(str(env), str(tmp_path / "chunks"), env_id="e" * 32,
                             digest="d" * 64, python=here["python_version"],
                             platform=here["platform"])
    return manifest, [(tmp_path / "chunks" / c["sha256"]).read_bytes()
                      for c in manifest["chunks"]]


def header(cache: Path, manifest: dict[str, Any], chunks: list[bytes]) -> bytes:
    fields: protocol.Header = {
        "version": protocol.VERSION, "action": "prepare", "mode": "artifact",
        "cache": str(cache), "store": "", "env_id": "e" * 32, "digest": "d" * 64,
        "manifest": manifest, "code_id": "", "code_sha256": "",
        "send": [{"kind": "object", "sha256": c["sha256"], "size": len(data)}
                 for c, data in zip(manifest["chunks"], chunks, strict=True)],
    }
    return json.dumps(fields).encode() + b"\n"


class HeldBack(io.RawIOBase):
    """A stdin that gives its last chunk only once ``release()`` returns true: the
    unpacking must have started on the earlier chunks by then."""

    def __init__(self, first: bytes, last: bytes, release: Any) -> None:
        self.parts = [first, last]
        self.release = release

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self.parts:
            return 0
        if len(self.parts) == 1 and not self.release():
            raise AssertionError("nothing was unpacked before the last chunk arrived")
        data = self.parts[0][:len(buffer)]
        buffer[:len(data)] = data
        self.parts[0] = self.parts[0][len(data):]
        if not self.parts[0]:
            self.parts.pop(0)
        return len(data)


def events(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def staged_files(cache: Path) -> bool:
    """Whether an unpacking in progress has written files yet (waits a little for it)."""
    seen = threading.Event()
    for _ in range(200):
        if any(files for p in (cache / "envs").glob(f"{layout.STAGING_PREFIX}*")
               for _, _, files in os.walk(p)):
            seen.set()
            break
        seen.wait(0.05)
    return seen.is_set()


def test_chunks_are_unpacked_as_they_arrive(tmp_path, capsys):
    manifest, chunks = archive(tmp_path)
    cache = tmp_path / "host-cache"
    stdin = io.BufferedReader(HeldBack(header(cache, manifest, chunks) + b"".join(chunks[:-1]),
                                       chunks[-1], lambda: staged_files(cache)))
    assert main.serve(stdin) == 0
    said = events(capsys.readouterr().out)
    kinds = [e["event"] for e in said]
    assert kinds.index("received") < kinds.index("done") == len(kinds) - 1
    env = Path(said[-1]["env_python"]).parent.parent
    assert layout.is_ready(str(env))
    assert (env / "pyvenv.cfg").is_file()
    assert not list((cache / "envs").glob(f"{layout.STAGING_PREFIX}*"))


def test_a_chunk_altered_in_transit_leaves_nothing(tmp_path, capsys):
    manifest, chunks = archive(tmp_path)
    cache = tmp_path / "host-cache"
    chunks[-1] = chunks[-1][:50] + bytes([chunks[-1][50] ^ 1]) + chunks[-1][51:]
    stdin = io.BytesIO(header(cache, manifest, chunks) + b"".join(chunks))
    assert main.serve(stdin) == 1
    error = events(capsys.readouterr().out)[-1]
    assert error["event"] == "error" and error["kind"] == "integrity"
    assert manifest["chunks"][-1]["sha256"][:12] in error["message"]
    envs = cache / "envs"
    assert not envs.exists() or [p.name for p in envs.iterdir()
                                 if not p.name.endswith((".lock", ".lease"))] == []
