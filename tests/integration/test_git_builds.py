"""Git installs are built on the client from the recorded commit, over file:// and over SSH
with a key only the client has; an unreachable server falls back to the installed files."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from packsync.build.wheels import build_local_code
from packsync.errors import BuildError
from packsync.store import LocalStore
from tests.support.builds import Steps, Venv, plan_for, wheel_text
from tests.support.projects import git, git_init, make_project, write
from tests.support.sshd import SSHD, plain_sshd

pytestmark = pytest.mark.integration


def repository(root: Path, name: str, value: str) -> tuple[Path, str]:
    make_project(root, name, f"VALUE = {value!r}\n")
    return root, git_init(root)


def direct_url(venv: Venv, name: str) -> Path:
    return next(venv.site.glob(f"{name}-*.dist-info")) / "direct_url.json"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """``gitpkg`` installed from a file:// repository at its first commit, which has moved
    on since; ``gitedit`` an editable checkout."""
    tmp = tmp_path_factory.mktemp("git")
    repo, first = repository(tmp / "repos" / "gitpkg", "gitpkg", "v1")
    write(repo / "src" / "gitpkg" / "__init__.py", "VALUE = 'v2'\n")
    git("commit", "-q", "-am", "second", cwd=repo)
    upstream, _ = repository(tmp / "repos" / "gitedit", "gitedit", "committed")
    checkout = tmp / "checkout"
    git("clone", "-q", str(upstream), str(checkout), cwd=tmp)
    venv = Venv(tmp / "venv")
    venv.install(f"gitpkg @ git+{repo.as_uri()}@{first}", "-e", str(checkout))
    return {"venv": venv, "repo": repo, "first": first, "checkout": checkout, "tmp": tmp}


def build(installed, tmp_path, *names, reporter=None):
    snapshot = installed["venv"].snapshot()
    store = LocalStore(tmp_path / "store")
    artifacts = build_local_code(plan_for(snapshot, *names), store=store,
                                 cache=tmp_path / "cache", snapshot=snapshot, reporter=reporter)
    return store, artifacts


def test_built_from_the_recorded_commit_not_the_branch_head(installed, tmp_path):
    recorded = json.loads(direct_url(installed["venv"], "gitpkg").read_text())
    assert recorded["vcs_info"]["commit_id"] == installed["first"]
    store, artifacts = build(installed, tmp_path, "gitpkg")
    assert wheel_text(store, artifacts["gitpkg"].sha256, "gitpkg/__init__.py", tmp_path) \
        == "VALUE = 'v1'\n"


def test_an_editable_checkout_is_built_as_it_is_on_disk(installed, tmp_path):
    module = installed["checkout"] / "src" / "gitedit" / "__init__.py"
    module.write_text("VALUE = 'uncommitted'\n")
    store, artifacts = build(installed, tmp_path, "gitedit")
    assert wheel_text(store, artifacts["gitedit"].sha256, "gitedit/__init__.py", tmp_path) \
        == "VALUE = 'uncommitted'\n"


def test_a_missing_commit_id_warns_and_builds_the_requested_revision(installed, tmp_path, caplog):
    path = direct_url(installed["venv"], "gitpkg")
    original = path.read_text()
    data = json.loads(original)
    data["vcs_info"] = {"vcs": "git", "requested_revision": "main"}
    path.write_text(json.dumps(data))
    try:
        with caplog.at_level(logging.WARNING, logger="packsync.build.git"):
            store, artifacts = build(installed, tmp_path, "gitpkg")
    finally:
        path.write_text(original)
    assert "no commit was recorded" in caplog.text and "main" in caplog.text
    assert wheel_text(store, artifacts["gitpkg"].sha256, "gitpkg/__init__.py", tmp_path) \
        == "VALUE = 'v2'\n"


def test_unreachable_server_falls_back_to_the_installed_files(installed, tmp_path, caplog):
    repo: Path = installed["repo"]
    moved = repo.with_name("moved-away")
    repo.rename(moved)
    steps = Steps()
    try:
        with caplog.at_level(logging.WARNING, logger="packsync.build.wheels"):
            store, artifacts = build(installed, tmp_path, "gitpkg", reporter=steps)
        assert wheel_text(store, artifacts["gitpkg"].sha256, "gitpkg/__init__.py", tmp_path) \
            == "VALUE = 'v1'\n"
        assert "repacked from the installed files" in caplog.text
        assert any("cannot be reached" in m and repo.as_uri() in m for m in steps.messages)

        # an installed file edited since install: the repack is no longer faithful
        installed_module = installed["venv"].site / "gitpkg" / "__init__.py"
        saved = installed_module.read_text()
        installed_module.write_text("VALUE = 'hacked'\n")
        try:
            with pytest.raises(BuildError) as caught:
                build(installed, tmp_path / "again", "gitpkg")
        finally:
            installed_module.write_text(saved)
        assert caught.value.package == "gitpkg" and repo.as_uri() in str(caught.value)
        assert "changed since it was installed" in str(caught.value)
    finally:
        moved.rename(repo)


# --------------------------------------------------------------------------- over SSH


@pytest.fixture
def sshd(tmp_path):
    """An OpenSSH server on 127.0.0.1 that accepts one key, which only this test holds."""
    if not Path(SSHD).exists() or shutil.which("ssh") is None:
        pytest.skip("OpenSSH is not installed (make system-packages installs it)")
    with plain_sshd(tmp_path) as served:
        yield served


def test_git_over_ssh_with_the_clients_own_key(installed, sshd, tmp_path, monkeypatch):
    port, key = sshd
    user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True,
                                                    text=True).stdout.strip()
    url = f"ssh://{user}@127.0.0.1:{port}{installed['repo']}"
    options = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes"
    monkeypatch.setenv("GIT_SSH_COMMAND", f"ssh {options} -o IdentityFile=/dev/null")
    keyless = subprocess.run(["git", "ls-remote", url], capture_output=True, text=True)
    assert keyless.returncode != 0  # the server wants the key; nobody else has it

    path = direct_url(installed["venv"], "gitpkg")
    original = path.read_text()
    data = json.loads(original)
    data["url"] = url
    path.write_text(json.dumps(data))
    monkeypatch.setenv("GIT_SSH_COMMAND", f"ssh {options} -o IdentitiesOnly=yes -i {key}")
    try:
        steps = Steps()
        store, artifacts = build(installed, tmp_path, "gitpkg", reporter=steps)
    finally:
        path.write_text(original)
    assert steps.messages == ["building gitpkg"]  # built from Git, not repacked
    assert wheel_text(store, artifacts["gitpkg"].sha256, "gitpkg/__init__.py", tmp_path) \
        == "VALUE = 'v1'\n"
