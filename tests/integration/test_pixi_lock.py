"""A pixi project on a Mac: its ``pixi.lock`` locks two environments on two platforms, and
Linux workers get, from a real channel that serves two builds of the same version, the
very file the running environment locks for Linux; an environment that does not match its
lock is reported and left alone. The channel and the conda environments are real (made by
rattler from packages built by the test); the lock is written as pixi 0.40+ writes one."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

from packsync.conda.channels import live_channels
from packsync.conda.install import install_conda
from packsync.conda.scan import scan_conda
from packsync.conda.solve import solve_conda
from packsync.errors import LockError
from packsync.model import InstalledDist, Interpreter, Plan, Snapshot
from packsync.plan.rules import MANDATORY, plan
from packsync.scan.project_locks import project_locks
from tests.support.conda_channel import TOKEN, create_prefix, data_package, serve_channel
from tests.support.venvs import REPO, hermetic_env

pytestmark = pytest.mark.integration

MAC = json.loads((REPO / "tests" / "fixtures" / "snapshot-macos-arm64.json").read_text())


@pytest.fixture(scope="module")
def channel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Two builds of ``probe 1.0.0``: the lock's (build number 0) and the one a solver
    prefers (build number 1); the same for ``libextra``, which ``probe`` needs on Linux
    only. Returns the channel and the SHA-256 of each file the lock has."""
    channel = tmp_path_factory.mktemp("pixi-channel") / "channel"
    (channel / "linux-64").mkdir(parents=True)
    libextra = data_package(channel, "libextra", "1.0.0", "h0_0", 0)
    data_package(channel, "libextra", "1.0.0", "h1_1", 1)
    locked = data_package(channel, "probe", "1.0.0", "h0_0", 0, depends=("libextra",))
    data_package(channel, "probe", "1.0.0", "h1_1", 1, depends=("libextra",))
    return channel, {"probe": hashlib.sha256(locked.read_bytes()).hexdigest(),
                     "libextra": hashlib.sha256(libextra.read_bytes()).hexdigest()}


def pixi_lock(url: str, sha256: dict[str, str]) -> str:
    """The project's lock: ``default`` has on macOS the build installed there (``h1_1``),
    ``cuda`` another one; both lock ``h0_0`` for Linux, and ``libextra`` there only."""
    mac_sha = hashlib.sha256(b"probe mac").hexdigest()
    mac_old_sha = hashlib.sha256(b"probe mac old").hexdigest()
    return f"""\
version: 6
environments:
  cuda:
    channels:
    - url: {url}/
    packages:
      linux-64:
      - conda: {url}/linux-64/libextra-1.0.0-h0_0.conda
      - conda: {url}/linux-64/probe-1.0.0-h0_0.conda
      osx-arm64:
      - conda: {url}/osx-arm64/probe-1.0.0-h0_0.conda
  default:
    channels:
    - url: {url}/
    packages:
      linux-64:
      - conda: {url}/linux-64/libextra-1.0.0-h0_0.conda
      - conda: {url}/linux-64/probe-1.0.0-h0_0.conda
      osx-arm64:
      - conda: {url}/osx-arm64/probe-1.0.0-h1_1.conda
packages:
- conda: {url}/linux-64/libextra-1.0.0-h0_0.conda
  sha256: {sha256["libextra"]}
- conda: {url}/linux-64/probe-1.0.0-h0_0.conda
  sha256: {sha256["probe"]}
  md5: {hashlib.md5(sha256["probe"].encode()).hexdigest()}
  depends:
  - libextra
  size: 1200
  timestamp: 1732735488999
- conda: {url}/osx-arm64/probe-1.0.0-h0_0.conda
  sha256: {mac_old_sha}
- conda: {url}/osx-arm64/probe-1.0.0-h1_1.conda
  build_number: 1
  sha256: {mac_sha}
"""


@pytest.fixture
def project(channel: tuple[Path, str], tmp_path: Path):  # type: ignore[no-untyped-def]
    """A pixi project whose two environments rattler made from the channel (as pixi
    would: the newest build, ``h1_1``), its ``pixi.lock`` beside them."""
    directory, sha256 = channel
    with serve_channel(directory) as url:
        root = tmp_path / "project"
        for name in ("default", "cuda"):
            # a cache each: http.server answers rattler's revalidation with a 304 it rejects
            create_prefix(root / ".pixi" / "envs" / name, url, ["probe"],
                          tmp_path / f"rattler-{name}")
        (root / "pixi.toml").write_text('[workspace]\nname = "app"\n')
        (root / "pixi.lock").write_text(pixi_lock(url, sha256))
        yield root, sha256


def mac_snapshot(project: Path, environment: str) -> Snapshot:
    """A Mac running in the pixi ``environment`` of ``project``: its conda records are
    those rattler installed, as they would read on macOS."""
    prefix = str(project / ".pixi" / "envs" / environment)
    conda = scan_conda(prefix, ()).environment
    conda = replace(conda, subdir="osx-arm64", packages=tuple(
        replace(p, subdir="osx-arm64", depends=()) for p in conda.packages
        if p.name != "libextra"))  # probe needs it on Linux only
    locks, notes = project_locks(project, prefix=prefix, environ={})
    assert notes == ()
    return Snapshot(
        interpreter=Interpreter(implementation="cpython", version="3.11.7",
                                platform=MAC["interpreter"]["platform"]),
        environment=MAC["environment"], prefix=prefix,
        dists=tuple(InstalledDist(name=n, version="1.0") for n in MANDATORY),
        conda=conda, project_locks=locks,
    )


def installed_build(decided: Plan, prefix: str, tmp_path: Path,
                    name: str = "probe") -> tuple[str, str]:
    """Solve the plan's conda part for Linux and install it as a worker would: the build
    of ``name`` installed and the SHA-256 of its file."""
    assert decided.conda is not None
    channels = live_channels(prefix)
    cache = Path(tempfile.mkdtemp(dir=tmp_path))  # fresh: see ``project``
    solved = solve_conda(decided.conda, decided.target, channels=channels, cache=cache,
                         same_platform=False)
    worker = cache / "worker"
    install_conda(solved, worker, cache=cache, channels=channels)
    [package] = [p for p in solved.packages if p.name == name]
    assert (worker / "share" / name / "build").read_text() == f"{name} 1.0.0 {package.build}\n"
    return package.build, package.sha256


def test_linux_workers_get_the_file_the_running_environment_locks(project, tmp_path: Path):  # type: ignore[no-untyped-def]
    root, sha256 = project
    snapshot = mac_snapshot(root, "default")
    decided = plan(snapshot)
    assert decided.project_lock == str(root / "pixi.lock")
    assert decided.project_lock_environment == "default"
    assert decided.conda is not None
    [probe] = [d for d in decided.conda.decisions if d.name == "probe"]
    assert probe.spec == f"probe ==1.0.0 h0_0[sha256={sha256['probe']}]"
    assert decided.conda.constraints == (f"libextra ==1.0.0 h0_0[sha256={sha256['libextra']}]",)
    assert "pixi.lock (environment default) locks probe-1.0.0-h0_0.conda" in probe.reason
    assert TOKEN not in json.dumps(decided.to_dict()) + json.dumps(snapshot.to_dict())
    assert installed_build(decided, snapshot.prefix, tmp_path) == ("h0_0", sha256["probe"])
    assert installed_build(decided, snapshot.prefix, tmp_path, "libextra") == (
        "h0_0", sha256["libextra"])

    # `packsync plan` names the lock and its environment
    saved = tmp_path / "mac.json"
    saved.write_text(json.dumps(snapshot.to_dict()))
    shown = subprocess.run(
        [sys.executable, "-m", "packsync.cli", "plan", "--snapshot", str(saved), "--no-resolve"],
        capture_output=True, text=True, env=hermetic_env(COLUMNS="400"), timeout=300)
    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stdout.split())
    assert f"from the project lock {root / 'pixi.lock'} (environment default)" in text
    assert "pixi.lock (environment default) locks probe-1.0.0-h0_0.conda for linux-64" in text
    assert "held to the project lock, if the solver needs them: libextra ==1.0.0 h0_0" in text

    # without the lock, the usual rule: the same version, in the build the solver prefers
    usual = plan(replace(snapshot, project_locks=()))
    assert usual.project_lock == ""
    assert installed_build(usual, snapshot.prefix, tmp_path)[0] == "h1_1"
    assert installed_build(usual, snapshot.prefix, tmp_path, "libextra")[0] == "h1_1"


def test_an_environment_that_does_not_match_its_lock_is_reported_and_not_used(
        project, tmp_path: Path):  # type: ignore[no-untyped-def]
    root, _ = project
    snapshot = mac_snapshot(root, "cuda")  # has h1_1; the lock's cuda has h0_0 on macOS
    [lock] = snapshot.project_locks
    assert lock.environment == "cuda"
    decided = plan(snapshot)
    assert decided.project_lock == "" and decided.project_lock_environment == ""
    [report] = [p for p in decided.problems if "does not match" in p.message]
    assert f"{root / 'pixi.lock'} (environment cuda)" in report.message
    assert "probe 1.0.0 h1_1 here, 1.0.0 h0_0 in the lock" in report.message
    assert installed_build(decided, snapshot.prefix, tmp_path)[0] == "h1_1"


def test_a_locked_file_the_channel_does_not_serve_stops_the_lock(project, tmp_path: Path):  # type: ignore[no-untyped-def]
    root, sha256 = project
    lock = root / "pixi.lock"
    other = hashlib.sha256(b"a rebuilt probe").hexdigest()
    lock.write_text(lock.read_text().replace(f"sha256: {sha256['probe']}", f"sha256: {other}"))
    snapshot = mac_snapshot(root, "default")
    decided = plan(snapshot)
    assert decided.project_lock_environment == "default"
    with pytest.raises(LockError) as raised:
        installed_build(decided, snapshot.prefix, tmp_path)
    assert raised.value.package == "probe" and other in str(raised.value)
    assert "the project lock pins the file of probe" in str(raised.value)
