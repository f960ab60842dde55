"""The live code link a worker command's job makes on its machine stays while the job's
worker runs, and the collector removes it once every job that used it has ended."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from packsync.hostside import artifact, layout, lease, lifecycle, livecode, resources

SLEEPER = "import time; time.sleep(120)"


def shared_store(tmp_path: Path) -> tuple[Path, str, str]:
    """A store holding a lock and the archive of a (stand-in) environment for it, as
    ``worker_command`` publishes them: the store, the lock's and the manifest's SHA-256."""
    from tests.unit.test_artifact import fake_environment

    store = tmp_path / "store"
    lock = b"# a stand-in lock\n"
    lock_sha = hashlib.sha256(lock).hexdigest()
    here = resources.interpreter()
    built = fake_environment(tmp_path / "built")
    (built / layout.RECORD_DIR).mkdir()
    (built / layout.RECORD_DIR / "pylock.toml").write_bytes(lock)
    manifest = artifact.pack(str(built), str(tmp_path / "chunks"),
                             env_id=lock_sha[:32], digest=lock_sha,
                             python=here["python_version"], platform=here["platform"])
    text = json.dumps(manifest).encode()
    manifest_sha = hashlib.sha256(text).hexdigest()
    blobs = {lock_sha: lock, manifest_sha: text,
             **{c["sha256"]: (tmp_path / "chunks" / c["sha256"]).read_bytes()
                for c in manifest["chunks"]}}
    for sha, data in blobs.items():
        Path(layout.blob_path(str(store), sha)).parent.mkdir(parents=True, exist_ok=True)
        Path(layout.blob_path(str(store), sha)).write_bytes(data)
    return store, lock_sha, manifest_sha


def job(store: Path, lock_sha: str, manifest_sha: str, cache: Path,
        link: str = "jobs-test") -> subprocess.Popen[str]:
    """The host side's ``worker`` command, as a job runs it, execing a long-running Python."""
    return subprocess.Popen(
        [sys.executable, "-m", "packsync.hostside.main", "worker", "--store", str(store),
         "--lock", lock_sha, "--artifact", manifest_sha, "--cache", str(cache),
         "--link", link, "--", "-c", SLEEPER], text=True)


def running(process: subprocess.Popen[str]) -> bool:
    """Whether the job's worker runs (the command has exec'd the environment's Python)."""
    deadline = time.monotonic() + 120  # a loaded machine unpacks slowly
    while time.monotonic() < deadline and process.poll() is None:
        try:
            argv = Path(f"/proc/{process.pid}/cmdline").read_text(errors="replace").split("\0")
        except (FileNotFoundError, ProcessLookupError):  # it ended meanwhile
            break
        if "packsync.hostside.main" not in argv and SLEEPER in argv:
            return True
        time.sleep(0.05)
    return False


def test_a_jobs_link_stays_while_its_worker_runs_and_goes_after(tmp_path: Path) -> None:
    store, lock_sha, manifest_sha = shared_store(tmp_path)
    cache = tmp_path / "node-cache"
    link = Path(livecode.link_path(str(cache), "jobs-test"))
    first, second = (job(store, lock_sha, manifest_sha, cache) for _ in range(2))
    try:
        assert running(first) and running(second)
        cluster_link = Path(livecode.make_link(str(cache), "", "cluster-own"))  # no lease
        assert link.is_symlink()
        assert lifecycle.unused_links(str(cache)) == 0
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert lifecycle.unused_links(str(cache)) == 0  # the second job still runs
        assert link.is_symlink()
    finally:
        for process in (first, second):
            process.send_signal(signal.SIGKILL)
            process.wait()
    assert lifecycle.collect(str(cache))["links"] == 1
    assert not link.is_symlink() and not os.path.exists(lease.lease_path(str(link)))
    assert cluster_link.is_symlink()  # a link without a lease is its cluster's to remove
    assert lifecycle.unused_links(str(cache)) == 0


def test_the_next_job_on_the_machine_removes_the_links_of_ended_ones(tmp_path: Path) -> None:
    store, lock_sha, manifest_sha = shared_store(tmp_path)
    cache = tmp_path / "node-cache"
    ended = job(store, lock_sha, manifest_sha, cache, link="jobs-ended")
    try:
        assert running(ended)
    finally:
        ended.send_signal(signal.SIGKILL)
        ended.wait()
    assert Path(livecode.link_path(str(cache), "jobs-ended")).is_symlink()
    later = job(store, lock_sha, manifest_sha, cache, link="jobs-later")  # within the hour
    try:
        assert running(later)
        assert not Path(livecode.link_path(str(cache), "jobs-ended")).is_symlink()
        assert Path(livecode.link_path(str(cache), "jobs-later")).is_symlink()
    finally:
        later.send_signal(signal.SIGKILL)
        later.wait()
