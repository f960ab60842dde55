"""Attacks replayed against the real build and materialize: each must fail. The counts are
printed at the end of the run (``tests/conftest.py``); the other attacks are tagged where
they are tested (``grep -r mark.attack tests``)."""

from __future__ import annotations

import base64
import functools
import http.server
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from packsync.build.git import GitCredentials
from packsync.build.wheels import build_local_code
from packsync.lock.lockfile import PacksyncTable, empty_document, render
from packsync.store import LocalStore
from tests.support.builds import Steps, Venv, plan_for, wheel_text
from tests.support.projects import git, git_init, make_project
from tests.support.servers import serve_http
from tests.support.venvs import hermetic_env

pytestmark = pytest.mark.integration

TOKEN = "ghp_Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2"


@dataclass(frozen=True, kw_only=True, slots=True)
class PrivateGit:
    """``gitpkg`` installed from a Git repository served over HTTP that wants ``TOKEN``."""

    venv: Venv
    url: str  # the repository's URL, without credentials
    seen: list[str]  # the Authorization headers it received
    argv_log: Path  # every git command line run, one a line


@pytest.fixture(scope="module")
def private_git(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateGit]:
    tmp = tmp_path_factory.mktemp("private-git")
    repo = make_project(tmp / "work" / "gitpkg", "gitpkg", "VALUE = 'v1'\n")
    git_init(repo)
    served = tmp / "served"
    served.mkdir()
    git("clone", "-q", "--bare", str(repo), str(served / "gitpkg.git"), cwd=tmp)
    git("update-server-info", cwd=served / "gitpkg.git")
    wanted = "Basic " + base64.b64encode(f"{TOKEN}:x-oauth-basic".encode()).decode()
    seen: list[str] = []

    class Dumb(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.headers.get("Authorization", ""))
            if seen[-1] != wanted:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass

    venv = Venv(tmp / "venv")
    venv.install(f"gitpkg @ git+{repo.as_uri()}")
    with serve_http(functools.partial(Dumb, directory=str(served))) as base:
        url = f"{base}/gitpkg.git"
        recorded = next(venv.site.glob("gitpkg-*.dist-info")) / "direct_url.json"
        data = json.loads(recorded.read_text())
        data["url"] = url.replace("http://", f"http://{TOKEN}:x-oauth-basic@")
        recorded.write_text(json.dumps(data))
        yield PrivateGit(venv=venv, url=url, seen=seen, argv_log=tmp / "git-argv.log")


@pytest.fixture
def logged_git(private_git: PrivateGit, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``git`` first on the PATH that writes each command line it is given, then runs git."""
    real = shutil.which("git")
    assert real is not None
    wrapper = tmp_path / "bin" / "git"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {private_git.argv_log}\n'
                       f'exec {real} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}")
    private_git.argv_log.unlink(missing_ok=True)
    return private_git.argv_log


@pytest.mark.attack("token as a Git URL's username")
def test_a_git_token_reaches_its_server_and_no_snapshot_or_command_line(
    private_git: PrivateGit, logged_git: Path, tmp_path: Path
) -> None:
    snapshot = private_git.venv.snapshot()
    assert TOKEN not in json.dumps(snapshot.to_dict())
    assert snapshot.get("gitpkg").source.to_dict()["url"] == private_git.url  # type: ignore[union-attr]
    private_git.seen.clear()
    steps = Steps()
    store = LocalStore(tmp_path / "store")
    artifacts = build_local_code(plan_for(snapshot, "gitpkg"), store=store,
                                 cache=tmp_path / "cache", snapshot=snapshot, reporter=steps)
    assert steps.messages == ["building gitpkg"]  # cloned over HTTP, not repacked
    assert wheel_text(store, artifacts["gitpkg"].sha256, "gitpkg/__init__.py", tmp_path) \
        == "VALUE = 'v1'\n"
    sent = "Basic " + base64.b64encode(f"{TOKEN}:x-oauth-basic".encode()).decode()
    assert sent in private_git.seen  # the credentials reached their own server
    command_lines = logged_git.read_text()
    assert "clone" in command_lines and TOKEN not in command_lines


@pytest.mark.attack("token as a Git URL's username")
def test_a_refused_git_token_is_named_nowhere(private_git: PrivateGit, logged_git: Path,
                                              tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    snapshot = private_git.venv.snapshot()
    recorded = next(private_git.venv.site.glob("gitpkg-*.dist-info")) / "direct_url.json"
    original = recorded.read_text()
    wrong = TOKEN[::-1]
    recorded.write_text(original.replace(TOKEN, wrong))
    steps = Steps()
    try:
        with caplog.at_level(logging.DEBUG):
            build_local_code(plan_for(snapshot, "gitpkg"), store=LocalStore(tmp_path / "s"),
                             cache=tmp_path / "cache", snapshot=snapshot, reporter=steps)
    finally:
        recorded.write_text(original)
    shown = "\n".join([*steps.messages, caplog.text, logged_git.read_text()])
    assert "repacked from the installed files" in caplog.text  # the server said no
    assert wrong not in shown and TOKEN not in shown


@pytest.mark.attack("token as a Git URL's username")
def test_the_git_credential_helper_answers_its_own_origin_only(tmp_path: Path) -> None:
    credentials = GitCredentials(protocol="https", host="git.example:8443",
                                 username=TOKEN, password="x-oauth-basic")
    env = credentials.environment({**os.environ, "HOME": str(tmp_path),
                                   "GIT_TERMINAL_PROMPT": "0"})

    def fill(protocol: str, host: str) -> str:
        done = subprocess.run(["git", "credential", "fill"], env=env, capture_output=True,
                              text=True, input=f"protocol={protocol}\nhost={host}\n\n")
        return done.stdout

    assert f"username={TOKEN}\npassword=x-oauth-basic" in fill("https", "git.example:8443")
    for protocol, host in [("https", "collector.example"), ("http", "git.example:8443"),
                           ("https", "git.example")]:
        assert TOKEN not in fill(protocol, host)


# --------------------------------------------------------------------------- hostile locks

PACKSYNC = str(Path(sys.executable).with_name("packsync"))

BACKEND = """\
import pathlib

def _mark(*args, **kwargs):
    pathlib.Path({marker!r}).write_text("the build backend ran")
    raise SystemExit(1)

build_wheel = build_sdist = get_requires_for_build_wheel = prepare_metadata_for_build_wheel = _mark
"""


def hostile_locks(tmp_path: Path, marker: Path) -> dict[str, Path]:
    """Locks ``packsync lock`` never writes, each of which would run code of its author's
    (leaving ``marker``) if it were installed."""
    project = tmp_path / "evil"
    project.mkdir()
    (project / "backend.py").write_text(BACKEND.format(marker=str(marker)))
    (project / "pyproject.toml").write_text(
        '[project]\nname = "evil"\nversion = "1.0"\n'
        '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n')
    git_init(project)
    interpreter = tmp_path / "python3"
    interpreter.write_text(f"#!/bin/sh\necho ran > {marker}\necho {platform.python_version()}\n")
    interpreter.chmod(0o755)
    this = PacksyncTable(python=platform.python_version())
    sources: dict[str, tuple[dict[str, object], PacksyncTable]] = {
        "directory": ({"directory": {"path": str(project)}}, this),
        "vcs": ({"vcs": {"type": "git", "url": project.as_uri(),
                         "commit-id": git("rev-parse", "HEAD", cwd=project)}}, this),
        "python": ({"wheels": [{"url": "https://example.invalid/six-1.16.0-py3-none-any.whl",
                                "hashes": {"sha256": "0" * 64}}]},
                   PacksyncTable(python=str(interpreter))),
    }
    locks = {}
    for name, (source, table) in sources.items():
        package = {"name": "evil" if name != "python" else "six", "version": "1.0", **source}
        path = tmp_path / f"pylock.{name}.toml"
        path.write_text(render(empty_document() | {"packages": [package]}, table))
        locks[name] = path
    return locks


@pytest.mark.attack("hostile lock")
@pytest.mark.parametrize("kind", ["directory", "vcs", "python"])
def test_materialize_runs_nothing_a_hostile_lock_names(tmp_path: Path, kind: str) -> None:
    marker = tmp_path / "ran"
    lock = hostile_locks(tmp_path, marker)[kind]
    done = subprocess.run([PACKSYNC, "materialize", str(lock), "--cache-dir",
                           str(tmp_path / "cache")], capture_output=True, text=True,
                          timeout=300, env=hermetic_env())
    assert done.returncode != 0 and str(lock) in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not marker.exists(), done.stderr
    assert not list((tmp_path / "cache").glob("envs/*"))
