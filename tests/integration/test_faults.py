"""A materialize that survives anything: ``kill -9`` at random moments (uv running or not),
several at once, a disk too small, a damaged environment. Each scenario is counted, and
the counts are printed at the end of the run (``tests/conftest.py``).

Every run is the real ``packsync materialize`` of a small lock (httpx and what it needs,
from PyPI through uv's cache) into a cache of the test's own.
"""

from __future__ import annotations

import collections
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from packsync.hostside import contents
from packsync.lock.lockfile import PacksyncTable, render
from packsync.store import LocalStore
from tests.support.caches import small_lock_text
from tests.support.projects import make_wheel
from tests.support.venvs import hermetic_env

pytestmark = [pytest.mark.integration, pytest.mark.fault("materialize")]

PACKSYNC = str(Path(sys.executable).with_name("packsync"))
SEED = 1212
KILLS = 20  # half at any moment, half while uv runs


@pytest.fixture(scope="module")
def small_lock(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The text of a lock of httpx and its dependencies for this Python."""
    return small_lock_text(tmp_path_factory.mktemp("lock"))


def write_lock(directory: Path, text: str, variant: int) -> Path:
    """The lock, made a distinct environment by a comment (the digest is of the text)."""
    path = directory / f"pylock.{variant}.toml"
    path.write_text(f"# variant {variant}\n{text}")
    return path


def materialize(lock: Path, cache: Path, **popen: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PACKSYNC, "materialize", str(lock), "--cache-dir", str(cache)],
        env=hermetic_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        **popen,  # type: ignore[call-overload]
    )


def finished(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=300)
    return process.returncode, out, err


def processes_under(cache: Path) -> dict[int, str]:
    """Processes (ours) whose command line names the cache: uv and its children."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(cache) in argv and int(entry.name) != os.getpid():
            found[int(entry.name)] = argv
    return found


def uv_running(cache: Path, doing: str = "") -> bool:
    """Whether a uv (doing ``doing``, e.g. ``sync``) works on the cache."""
    return any(os.path.basename(argv.split(" ", 1)[0]) == "uv" and f" {doing}" in argv
               for argv in processes_under(cache).values())


def assert_clean(cache: Path) -> None:
    """Only ready environments (and their lock and lease files) in the cache."""
    envs = cache / "envs"
    for entry in envs.iterdir():
        if entry.suffix in (".lock", ".lease"):
            continue
        assert entry.is_dir() and contents.examine(str(entry), None) == [], entry


def test_kill_9_at_random_moments_never_stops_the_next_run(
    tmp_path: Path, small_lock: str, scenarios: collections.Counter[str]
) -> None:
    cache = tmp_path / "cache"
    rng = random.Random(SEED)
    start = time.monotonic()
    code, out, err = finished(materialize(write_lock(tmp_path, small_lock, 0), cache))
    assert code == 0, err
    whole = time.monotonic() - start
    for variant in range(1, KILLS + 1):
        lock = write_lock(tmp_path, small_lock, variant)
        victim = materialize(lock, cache)
        if variant % 2:  # any moment
            time.sleep(rng.uniform(0.05, whole * 0.8))
        else:  # a moment while uv installs (its longest step)
            deadline = time.monotonic() + whole
            while not uv_running(cache, "sync") and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.02))
        during_uv = uv_running(cache)
        victim.send_signal(signal.SIGKILL)
        code, _, _ = finished(victim)
        scenarios["kill -9: " + ("during uv" if during_uv else
                              "after it finished" if code == 0 else "outside uv")] += 1
        if processes_under(cache):
            scenarios["kill -9: orphans still running as the next run starts"] += 1
        code, out, err = finished(materialize(lock, cache))
        assert code == 0, err
        assert "Traceback" not in err
        python = out.strip().splitlines()[-1]
        assert Path(python).parents[2] == cache / "envs"
        left = processes_under(cache)
        assert not left, f"orphans of the killed run still running: {left}"
        assert not [p for p in (cache / "envs").iterdir() if p.name.startswith(".")]
        scenarios["kill -9: next run succeeded"] += 1
    assert_clean(cache)
    checked = subprocess.run([python, "-c", "import httpx; print(httpx.__version__)"],
                             capture_output=True, text=True, env=hermetic_env(), check=True)
    assert checked.stdout.strip() == "0.27.2"


def test_concurrent_materializes_build_once(tmp_path: Path, small_lock: str,
                                            scenarios: collections.Counter[str]) -> None:
    cache = tmp_path / "cache"
    lock = write_lock(tmp_path, small_lock, 0)
    runs = [materialize(lock, cache) for _ in range(4)]
    results = [finished(run) for run in runs]
    assert all(code == 0 for code, _, _ in results), [err for _, _, err in results]
    assert len({out.strip().splitlines()[-1] for _, out, _ in results}) == 1
    built = sum("built" in err and "built by another" not in err for _, _, err in results)
    assert built == 1
    scenarios["concurrent materializes, one build"] += len(runs)
    assert_clean(cache)


def test_a_damaged_environment_is_rebuilt(tmp_path: Path, small_lock: str,
                                          scenarios: collections.Counter[str]) -> None:
    cache = tmp_path / "cache"
    lock = write_lock(tmp_path, small_lock, 0)
    code, out, err = finished(materialize(lock, cache))
    assert code == 0, err
    env = Path(out.strip().splitlines()[-1]).parent.parent
    site = next(env.glob("lib/python*/site-packages"))
    damages = {
        "a deleted module": lambda: (site / "httpx" / "_auth.py").unlink(),
        "an edited module": lambda: (site / "httpx" / "_api.py").write_text("raise SystemExit\n"),
        "an added .pth": lambda: (site / "evil.pth").write_text("import os\n"),
        "an added sitecustomize.py": lambda: (site / "sitecustomize.py").write_text("x = 1\n"),
        "a .pth edited, same size and mtime": lambda: _same_size_and_mtime(
            next(site.glob("_virtualenv.pth")) if list(site.glob("_virtualenv.pth"))
            else _planted_pth(env, site)),
    }
    for name, damage in damages.items():
        damage()
        code, out, err = finished(materialize(lock, cache))
        assert code == 0, err
        assert "damaged" in err or "not used as it is" in err, (name, err)
        assert contents.examine(str(env), None) == [], name
        assert (site / "httpx" / "_auth.py").is_file()
        scenarios[f"damage noticed and rebuilt: {name}"] += 1


def _planted_pth(env: Path, site: Path) -> Path:
    """A .pth recorded in the environment's marker (this uv writes none)."""
    path = site / "packsync-test.pth"
    path.write_text("# a path\n")
    marker = contents.read_marker(str(env)) or {}
    digest = str(marker["digest"])
    contents.mark_ready(str(env), digest)
    return path


def _same_size_and_mtime(path: Path) -> None:
    info = path.stat()
    text = path.read_bytes()
    path.write_bytes(b"#" * len(text))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))


SMALL_DISK = """
set -e
mount -t tmpfs -o size=$1 tmpfs $2
set +e
$3 materialize $4 --cache-dir $2/cache --store $5 > $2/../full.out 2> $2/../full.err
echo $? > $2/../full.code
set -e
mount -o remount,size=200m $2
$3 materialize $4 --cache-dir $2/cache --store $5 > $2/../roomy.out 2> $2/../roomy.err
ls -A $2/cache/envs > $2/../left.txt
"""


def local_wheel_lock(tmp_path: Path) -> str:
    """A lock of one local wheel of 2 MB, put in a store at ``tmp_path/store``."""
    wheel = make_wheel(tmp_path / "built", "bigdata", "1.0", modules={
        "bigdata.py": "VALUE = 1\n", "bigdata_blob.py": "BLOB = " + repr(os.urandom(1 << 20).hex())})
    sha256 = hashlib.sha256(wheel.read_bytes()).hexdigest()
    LocalStore(tmp_path / "store").put(wheel, sha256)
    python = ".".join(map(str, sys.version_info[:3]))
    document = {"lock-version": "1.0", "created-by": "test", "packages": [{
        "name": "bigdata", "version": "1.0",
        "archive": {"path": f"wheels/{wheel.name}", "hashes": {"sha256": sha256}}}]}
    return render(document, PacksyncTable(python=python))


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                    reason="needs root and unshare to mount a small tmpfs")
@pytest.mark.parametrize(("size", "stage"), [("256k", "uv venv"), ("3m", "uv pip sync"),
                                             ("1m", "store copy")])
def test_a_disk_too_small_is_named_and_a_later_run_with_room_succeeds(
    tmp_path: Path, small_lock: str, size: str, stage: str, scenarios: collections.Counter[str]
) -> None:
    mount = tmp_path / "mnt"
    mount.mkdir()
    text = local_wheel_lock(tmp_path) if stage == "store copy" else small_lock
    lock = write_lock(tmp_path, text, 0)
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", SMALL_DISK, "sh",
         size, str(mount), PACKSYNC, str(lock), str(tmp_path / "store")],
        capture_output=True, text=True, timeout=300, env=hermetic_env(),
    )
    assert done.returncode == 0, done.stderr + (tmp_path / "roomy.err").read_text()
    err = (tmp_path / "full.err").read_text()
    assert (tmp_path / "full.code").read_text().strip() == "2", err
    assert "no space left" in err.lower() and str(mount) in err, err
    assert "Traceback" not in err
    assert (tmp_path / "roomy.out").read_text().strip().endswith("/bin/python")
    scenarios[f"disk full ({size}, {stage}) named, then built"] += 1
