"""An archive unpacked onto a full disk: a clear error naming the place, nothing taken as
ready, and the same unpack succeeding once there is room."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from packsync.hostside import artifact
from tests.unit.test_artifact import fake_environment

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                       reason="needs root and unshare to mount a small tmpfs"),
]

UNPACK = """
import json, sys
from packsync.hostside import install, protocol
manifest, chunks, cache = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
def build(path):
    install.install_artifact(path, manifest, lambda sha: f"{chunks}/{sha}",
                             python=sys.executable, python_version="3.11.7",
                             platform="Linux-x86_64")
try:
    install.materialize(cache, "e" * 32, "d" * 64, build)
    print(json.dumps({"ok": True}))
except protocol.HostError as error:
    print(json.dumps({"ok": False, "kind": error.kind, "message": str(error)}))
"""


def unpack_on_tmpfs(size: str, manifest: dict, chunks: Path, mount: Path) -> dict:
    """Unpack into a cache on a tmpfs of ``size``, in a mount namespace of its own."""
    mount.mkdir(exist_ok=True)
    src = str(Path(artifact.__file__).parents[2])
    script = (f"mount -t tmpfs -o size={size} tmpfs {mount} && "
              f"{sys.executable} -c \"$0\" \"$1\" \"$2\" \"$3\" && "
              f"ls -A {mount}/cache/envs > {mount.parent / 'left.txt'}")
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, UNPACK,
         json.dumps(manifest), str(chunks), f"{mount}/cache"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": src},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_full_disk_is_named_and_leaves_nothing_ready(tmp_path: Path):
    env = fake_environment(tmp_path / "built")
    (env / "lib" / "blob.bin").write_bytes(os.urandom(2_000_000))
    manifest = artifact.pack(str(env), str(tmp_path / "chunks"), env_id="e" * 32,
                             digest="d" * 64, python="3.11.7", platform="Linux-x86_64")
    full = unpack_on_tmpfs("512k", manifest, tmp_path / "chunks", tmp_path / "mnt")
    assert full == {"ok": False, "kind": "disk", "message": full["message"]}
    assert "no space left" in full["message"] and str(tmp_path / "mnt") in full["message"]
    left = (tmp_path / "left.txt").read_text().split()
    # no environment, no staging directory: the lease and build lock files alone
    assert sorted(left) == ["e" * 32 + ".lease", "e" * 32 + ".lock"]
    assert unpack_on_tmpfs("16m", manifest, tmp_path / "chunks", tmp_path / "mnt") == {"ok": True}
