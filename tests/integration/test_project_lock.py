"""Lockfile first: a Mac whose project has a universal ``uv.lock`` gives Linux workers the
versions that lock resolved for Linux, exactly. The lock is a real one, made by uv's
universal resolution against a local index built by the test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from packsync.lock.resolve import lock
from packsync.model import InstalledDist, Interpreter, Snapshot
from packsync.plan.rules import MANDATORY, plan
from packsync.scan import scan
from packsync.scan.indexes import discover
from packsync.scan.project_locks import project_locks
from packsync.store import open_store
from tests.support.projects import make_wheel, write
from tests.support.simple_index import serve_simple_index
from tests.support.venvs import REPO, UV, hermetic_env

pytestmark = pytest.mark.integration

PROBE = "packsync-lockfirst-probe"
APP = "packsync-lockfirst-app"  # on Linux, it needs LINUX, which needs DEEP
LINUX = "packsync-lockfirst-linux"
DEEP = "packsync-lockfirst-deep"
NEEDS_LINUX = f"{LINUX}; sys_platform == 'linux'"
MAC = json.loads((REPO / "tests" / "fixtures" / "snapshot-macos-arm64.json").read_text())


def mac_snapshot(probe_version: str, project: Path) -> Snapshot:
    """A Mac client with the Dask packages as here and the probe, in ``project``."""
    here = scan()
    mandatory = [here.get(name) for name in MANDATORY]
    locks, notes = project_locks(project)
    assert notes == ()
    return Snapshot(
        interpreter=Interpreter(implementation="cpython", version=here.interpreter.version,
                                platform=MAC["interpreter"]["platform"]),
        environment={**MAC["environment"], "python_version": here.environment["python_version"],
                     "python_full_version": here.interpreter.version},
        prefix="/Users/me/project/.venv",
        dists=tuple(InstalledDist(name=d.name, version=d.version) for d in mandatory if d)
        + (InstalledDist(name=PROBE, version=probe_version, requested=True),
           InstalledDist(name=APP, version="1.0.0", requested=True, requires=(NEEDS_LINUX,))),
        project_locks=locks,
    )


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    root = tmp_path_factory.mktemp("lockfirst")
    built = root / "built"
    wheels = [make_wheel(built, PROBE, v) for v in ("1.0.0", "1.1.0")]
    wheels.append(make_wheel(built, APP, "1.0.0", requires=(NEEDS_LINUX,)))
    wheels += [make_wheel(built, LINUX, v, requires=(DEEP,)) for v in ("1.0.0", "1.1.0")]
    wheels += [make_wheel(built, DEEP, v) for v in ("1.0.0", "2.0.0")]
    with serve_simple_index(root / "index", wheels) as url:
        yield url


@pytest.fixture(scope="module")
def project(index, tmp_path_factory) -> Path:
    """A project whose universal lock forks: 1.1.0 on macOS, 1.0.0 on Linux; on Linux it
    also holds what only Linux needs, below the newest versions."""
    root = tmp_path_factory.mktemp("project")
    write(root / "pyproject.toml", f"""\
        [project]
        name = "lockfirst-app"
        version = "0.1.0"
        requires-python = ">=3.10"
        dependencies = [
            "{PROBE}>=1.1; sys_platform == 'darwin'",
            "{PROBE}<1.1; sys_platform == 'linux'",
            "{APP}",
            "{LINUX}<1.1; sys_platform == 'linux'",
            "{DEEP}<2; sys_platform == 'linux'",
        ]
        """)
    result = subprocess.run([UV, "lock", "--quiet", "--default-index", index], cwd=root,
                            env=hermetic_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return root


def resolve(decided, index: str, tmp_path: Path) -> dict[str, str]:
    settings = discover({"UV_INDEX": index, "HOME": str(tmp_path), "PIP_CONFIG_FILE": os.devnull},
                        prefix=str(tmp_path))
    result = lock(decided, {}, store=open_store(str(tmp_path / "store")), settings=settings,
                  cache=tmp_path / "cache")
    return dict(result.versions)


def test_linux_workers_get_the_versions_the_uv_lock_has_for_linux(index, project, tmp_path):
    snapshot = mac_snapshot("1.1.0", project / "src" / "app")
    [used] = snapshot.project_locks
    assert used.kind == "uv.lock" and used.path == str(project / "uv.lock")
    decided = plan(snapshot)
    probe = next(d for d in decided.decisions if d.key == PROBE)
    assert (probe.specifier, probe.fallbacks) == ("==1.0.0", ())
    assert "uv.lock locks 1.0.0 for linux-x86_64" in probe.reason
    assert decided.project_lock == str(project / "uv.lock")
    assert any("from the project lock" in p.message and p.severity == "notice"
               for p in decided.problems)
    # what only Linux needs, and its own dependencies, come from the lock too
    assert decided.lock_constraints == (f"{DEEP}==1.0.0",)
    versions = resolve(decided, index, tmp_path)
    assert (versions[PROBE], versions[LINUX], versions[DEEP]) == ("1.0.0", "1.0.0", "1.0.0")

    # without the lock, the usual rule: the Mac's own version, which Linux can install,
    # and the newest of what it lacks
    usual = plan(replace(snapshot, project_locks=()))
    versions = resolve(usual, index, tmp_path)
    assert (versions[PROBE], versions[LINUX], versions[DEEP]) == ("1.1.0", "1.1.0", "2.0.0")
    assert usual.project_lock == "" and usual.lock_constraints == ()


def test_a_lock_the_environment_does_not_match_is_reported_and_not_used(project):
    decided = plan(mac_snapshot("1.0.0", project))  # the lock has 1.1.0 for macOS
    assert decided.project_lock == ""
    probe = next(d for d in decided.decisions if d.key == PROBE)
    assert "uv.lock" not in probe.reason and probe.fallbacks
    [report] = [p for p in decided.problems if "does not match" in p.message]
    assert report.severity == "warning" and str(project / "uv.lock") in report.message
    assert f"{PROBE} 1.0.0 here, 1.1.0 in the lock" in report.message
    assert "uv sync" in report.hint


def test_packsync_plan_says_which_lock_it_used(index, project, tmp_path):
    snapshot = tmp_path / "mac.json"
    snapshot.write_text(json.dumps(mac_snapshot("1.1.0", project).to_dict()))
    result = subprocess.run(
        [sys.executable, "-m", "packsync.cli", "plan", "--snapshot", str(snapshot),
         "--cache-dir", str(tmp_path / "cache")],
        capture_output=True, text=True, env=hermetic_env(COLUMNS="300", UV_INDEX=index),
        timeout=300)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert f"from the project lock {project / 'uv.lock'}" in text
    assert f"{PROBE} │ 1.1.0 │ 1.0.0" in text
