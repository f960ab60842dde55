"""The cache's environments: leases a crash gives back, expiry, the size cap, leftovers,
and the ready marker's record of files, lock and owner."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from packsync.hostside import contents, install, layout, lease, lifecycle
from tests.support.caches import DIGEST, build_lock_only, make_ready

HOLD = """
import sys, time
from packsync.hostside import lease
lease.hold(sys.argv[1])
print("held", flush=True)
time.sleep(600)
"""


def holder(env: Path) -> subprocess.Popen[str]:
    """Another process that runs from ``env`` (it holds the lease until it ends)."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(env)], stdout=subprocess.PIPE,
                               text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process


def env(cache: Path, name: str, *, used: float, size: int = 1000) -> Path:
    path = cache / "envs" / name
    path.mkdir(parents=True)
    (path / "blob").write_bytes(b"x" * size)
    make_ready(path, text=f"# {name}\n", used=used)
    return path


def test_a_lease_is_held_while_a_process_runs_and_given_back_by_a_kill_9(tmp_path: Path) -> None:
    path = env(tmp_path, "a", used=time.time())
    assert not lease.in_use(str(path))
    process = holder(path)
    try:
        assert lease.in_use(str(path))
        with lease.exclusive(str(path)) as free:
            assert not free
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert not lease.in_use(str(path))


def test_expired_environments_go_and_one_in_use_stays(tmp_path: Path) -> None:
    now = time.time()
    old = env(tmp_path, "old", used=now - 48 * 3600)
    running = env(tmp_path, "running", used=now - 48 * 3600)
    fresh = env(tmp_path, "fresh", used=now - 3600)
    process = holder(running)
    try:
        dry = lifecycle.collect(str(tmp_path), dry_run=True)
        assert [r["env_id"] for r in dry["removed"]] == ["old"] and old.is_dir()
        done = lifecycle.collect(str(tmp_path))
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert [(r["env_id"], r["reason"]) for r in done["removed"]] == [("old", "expired")]
    assert not old.exists() and running.is_dir() and fresh.is_dir()
    assert sorted(os.listdir(tmp_path / "envs")) == ["fresh", "running", "running.lease"]
    assert contents.examine(str(running), None) == []


def test_the_size_cap_evicts_the_least_recently_used(tmp_path: Path) -> None:
    now = time.time()
    for age, name in enumerate(["newest", "middle", "oldest"]):
        env(tmp_path, name, used=now - 3600 * (age + 1), size=100_000)
    env(tmp_path, "just-used", used=now, size=100_000)  # within the grace: kept
    done = lifecycle.collect(str(tmp_path), max_size=250_000)
    assert [(r["env_id"], r["reason"]) for r in done["removed"]] == [
        ("oldest", "size cap"), ("middle", "size cap")]
    listed = [i["env_id"] for i in lifecycle.environments(str(tmp_path))]
    assert listed == ["just-used", "newest"]


def test_unfinished_builds_and_old_leftovers_are_collected(tmp_path: Path) -> None:
    now = time.time()
    unfinished = tmp_path / "envs" / "half"
    (unfinished / "lib").mkdir(parents=True)
    os.utime(unfinished, (now - 7200, now - 7200))
    discarded = tmp_path / "envs" / ".discarded-x-1"
    discarded.mkdir()
    os.utime(discarded, (now - 7200, now - 7200))
    (tmp_path / "envs" / "gone.lock").write_text("")
    done = lifecycle.collect(str(tmp_path))
    assert sorted(r["reason"] for r in done["removed"]) == ["leftover", "unfinished"]
    assert os.listdir(tmp_path / "envs") == []


def test_the_automatic_pass_runs_at_most_once_an_interval(tmp_path: Path) -> None:
    now = time.time()
    env(tmp_path, "old", used=now - 48 * 3600)
    assert lifecycle.collect_if_due(str(tmp_path), now=now) is not None
    env(tmp_path, "old2", used=now - 48 * 3600)
    assert lifecycle.collect_if_due(str(tmp_path), now=now + 60) is None
    assert (tmp_path / "envs" / "old2").is_dir()
    assert lifecycle.collect_if_due(str(tmp_path), now=now + 3700) is not None


def test_list_says_what_an_environment_holds(tmp_path: Path) -> None:
    path = tmp_path / "envs" / "e1"
    path.mkdir(parents=True)
    make_ready(path, text='[[packages]]\nname = "httpx"\nversion = "0.27.2"\n')
    (info,) = lifecycle.environments(str(tmp_path))
    assert info["packages"] == ["httpx==0.27.2"] and info["ready"] and not info["in_use"]


def test_host_settings_read_durations_and_sizes() -> None:
    assert lifecycle.host_settings({}) == (24 * 3600.0, None)
    assert lifecycle.host_settings({"PACKSYNC_CACHE_EXPIRY": "36h",
                                    "PACKSYNC_CACHE_MAX_SIZE": "2GB"}) == (36 * 3600.0, 2 * 10**9)
    assert lifecycle.host_settings({"PACKSYNC_CACHE_EXPIRY": "soon"})[0] == 24 * 3600.0


@pytest.mark.attack("tampered environment")
def test_a_damaged_environment_is_noticed_and_rebuilt(tmp_path: Path) -> None:
    cache = str(tmp_path)

    def build(path: str) -> None:
        build_lock_only(path)
        Path(path, "module.py").write_text("VALUE = 1\n")

    path, _ = install.materialize(cache, "e1", DIGEST, build)
    Path(path, "module.py").write_text("VALUE = 2\n")
    assert contents.examine(path, DIGEST) == ["changed module.py"]
    said: list[str] = []
    assert install.materialize(cache, "e1", DIGEST, build, say=said.append) == (path, False)
    assert "damaged (changed module.py)" in said[0]
    Path(path, "extra.pth").write_text("import os\n")
    os.unlink(Path(path, "module.py"))
    assert contents.examine(path, DIGEST) == ["missing module.py", "added extra.pth"]


@pytest.mark.attack("tampered environment")
def test_a_damaged_environment_in_use_is_refused(tmp_path: Path) -> None:
    cache = str(tmp_path)
    path, _ = install.materialize(cache, "e1", DIGEST, build_lock_only)
    Path(path, "added.py").write_text("")
    process = holder(Path(path))
    try:
        with pytest.raises(install.HostError) as refused:
            install.materialize(cache, "e1", DIGEST, build_lock_only)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert refused.value.kind == "damaged" and "added added.py" in str(refused.value)


@pytest.mark.attack("shared or planted cache")
def test_a_marker_about_another_lock_is_not_trusted(tmp_path: Path) -> None:
    path = tmp_path / "envs" / "e1"
    path.mkdir(parents=True)
    make_ready(path)
    assert contents.trusted(str(path), DIGEST) == []
    (path / layout.RECORD_DIR / "pylock.toml").write_text("# another lock\n")
    assert any("not the one" in p for p in contents.trusted(str(path), DIGEST))
    assert contents.trusted(str(path), "0" * 64)


@pytest.mark.attack("shared or planted cache")
def test_a_cache_others_can_write_is_refused(tmp_path: Path) -> None:
    cache = tmp_path / "shared"
    cache.mkdir()
    cache.chmod(0o777)
    with pytest.raises(install.HostError) as refused:
        install.materialize(str(cache), "e1", DIGEST, build_lock_only)
    assert refused.value.kind == "cache" and "writable by other users" in str(refused.value)
    fresh = tmp_path / "fresh"
    install.check_cache_root(str(fresh))
    assert (fresh.stat().st_mode & 0o777) == 0o700
    assert (fresh / "envs").stat().st_mode & 0o777 == 0o700
    if os.geteuid() == 0:  # another user's cache
        os.chown(fresh, 65534, 65534)
        with pytest.raises(install.HostError) as foreign:
            install.check_cache_root(str(fresh))
        assert "belongs to uid 65534" in str(foreign.value)


def test_two_jobs_making_a_new_cache_at_once_both_go_on(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Two jobs start on a machine with no cache yet: the one whose mkdir loses the race
    uses the directory the other made."""
    made = os.mkdir

    def loses_the_race(path: str, mode: int = 0o777) -> None:
        made(path, mode)  # the other job, a moment earlier
        made(path, mode)

    monkeypatch.setattr(install.os, "mkdir", loses_the_race)
    install.check_cache_root(str(tmp_path / "new"))
    assert (tmp_path / "new" / "envs").is_dir()


@pytest.mark.attack("shared or planted cache")
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give files to another user")
def test_a_planted_donor_or_environment_is_never_used(tmp_path: Path) -> None:
    from packsync.hostside import pyc_reuse

    envs = tmp_path / "envs"
    config = "home = /usr/bin\nimplementation = CPython\nversion_info = 3.11.7\n"
    new = envs / "new"
    new.mkdir(parents=True)
    (new / "pyvenv.cfg").write_text(config)
    planted = envs / "planted"
    planted.mkdir()
    (planted / "pyvenv.cfg").write_text(config)
    make_ready(planted, used=time.time())
    for path in (planted, planted / layout.READY_MARKER):
        os.chown(path, 65534, 65534)  # another user's (nobody), in a cache they could write

    def donor() -> str | None:
        return pyc_reuse.bytecode_donor(str(envs), str(new), layout.READY_MARKER,
                                        install.trusted_donor)

    assert donor() is None
    assert any("not owned by this user" in p for p in contents.trusted(str(planted), None))
    for path in (planted, planted / layout.READY_MARKER):
        os.chown(path, os.getuid(), os.getgid())
    assert donor() == str(planted)  # the same environment, this user's own
    (planted / layout.RECORD_DIR / "pylock.toml").write_text("# another lock\n")
    assert donor() is None  # its marker is not about the lock it holds

    # a ready environment forged under the name of the one asked for: rebuilt, not used
    forged = Path(layout.env_dir(str(tmp_path), "e1"))
    forged.mkdir()
    forgery = {"format": 1, "digest": DIGEST, "uid": os.getuid(), "dirs": {}}
    (forged / layout.READY_MARKER).write_text(json.dumps(forgery))
    path, hit = install.materialize(str(tmp_path), "e1", DIGEST, build_lock_only)
    assert not hit and contents.examine(path, DIGEST) == []


def fake_env_with_python(cache: Path) -> Path:
    path = cache / "envs" / "e1"
    (path / "bin").mkdir(parents=True)
    (path / "bin" / "python").symlink_to(sys.executable)
    make_ready(path)
    return path


def test_a_host_side_run_hands_its_lease_to_the_process_it_supervises(tmp_path: Path) -> None:
    path = fake_env_with_python(tmp_path)
    header = {"version": 2, "action": "run", "cwd": str(tmp_path),
              "argv": [str(path / "bin" / "python"), "-c", "import time; time.sleep(60)"]}
    supervisor = subprocess.Popen([sys.executable, "-m", "packsync.hostside.main"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert supervisor.stdin is not None and supervisor.stdout is not None
    supervisor.stdin.write(json.dumps(header) + "\n")
    supervisor.stdin.flush()
    started = json.loads(supervisor.stdout.readline())
    try:
        assert started["event"] == "started" and lease.in_use(str(path))
        supervisor.send_signal(signal.SIGKILL)  # the supervisor dies; its child runs on
        supervisor.wait()
        assert lease.in_use(str(path))
    finally:
        os.killpg(started["pgid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while lease.in_use(str(path)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not lease.in_use(str(path))


def test_a_host_side_run_sets_default_variables_the_host_does_not_set(tmp_path: Path) -> None:
    path = fake_env_with_python(tmp_path)
    code = "import os; print(os.environ['OMP_NUM_THREADS'], os.environ['PYTHONHASHSEED'])"
    header = {"version": 2, "action": "run", "cwd": str(tmp_path),
              "argv": [str(path / "bin" / "python"), "-c", code],
              "env_defaults": {"OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "6640"}}
    supervisor = subprocess.Popen([sys.executable, "-m", "packsync.hostside.main"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True,
                                  env={**os.environ, "OMP_NUM_THREADS": "4"})
    assert supervisor.stdin is not None and supervisor.stderr is not None
    try:
        supervisor.stdin.write(json.dumps(header) + "\n")
        supervisor.stdin.flush()  # stdin stays open: its end would end the process
        assert supervisor.stderr.readline().split() == ["4", "6640"]  # the host's value wins
    finally:
        supervisor.stdin.close()
        supervisor.wait(30)


def test_a_worker_command_keeps_its_lease_across_exec(tmp_path: Path) -> None:
    path = fake_env_with_python(tmp_path)
    code = ("import os, sys\nfrom packsync.hostside import lease\n"
            "lease.keep_across_exec(sys.argv[1])\n"
            "os.execv('/bin/sleep', ['sleep', '60'])\n")
    process = subprocess.Popen([sys.executable, "-c", code, str(path)])
    try:
        deadline = time.monotonic() + 10
        while not os.readlink(f"/proc/{process.pid}/exe").endswith("sleep") \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        assert os.readlink(f"/proc/{process.pid}/exe").endswith("sleep")
        assert lease.in_use(str(path))
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert not lease.in_use(str(path))


def test_byte_code_python_writes_into_an_environment_is_no_damage(tmp_path: Path) -> None:
    """A conda environment's standard library comes without byte code: Python's own
    ``__pycache__`` directories, and ``.pyc`` files in them, are not damage."""
    def build(path: str) -> None:
        build_lock_only(path)
        Path(path, "pkg").mkdir()
        Path(path, "pkg", "module.py").write_text("VALUE = 1\n")

    path, _ = install.materialize(str(tmp_path), "e1", DIGEST, build)
    (Path(path) / "pkg" / "__pycache__").mkdir()
    (Path(path) / "pkg" / "__pycache__" / "module.cpython-311.pyc").write_bytes(b"\0" * 16)
    assert contents.examine(path, DIGEST) == []
    (Path(path) / "pkg" / "__pycache__.pth").write_text("import os\n")
    (Path(path) / "elsewhere").mkdir()
    (Path(path) / "pkg" / "other").symlink_to(Path(path) / "elsewhere")
    assert contents.examine(path, DIGEST) == ["added elsewhere", "added pkg/__pycache__.pth",
                                              "added pkg/other"]
