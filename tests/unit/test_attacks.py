"""Attacks on credentials and locks, replayed against the real index settings, uv, git and
lock reader: each must fail. The counts are printed at the end of the run (``tests/conftest.py``)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import dask.config
import pytest

from packsync.errors import LockError
from packsync.hostside import layout
from packsync.hostside.install import uv_environment
from packsync.hostside.jobs import job_index_environment
from packsync.hostside.transfer import receive
from packsync.lock.lockfile import Lock, PacksyncTable, empty_document, render
from packsync.scan.dists import scan_dists
from packsync.scan.indexes import discover
from packsync.store import LocalStore
from packsync.uvtool import run_uv, uv_binary
from tests.support import servers

SECRET = "d3fault-s3cret"


@pytest.fixture
def collector() -> Iterator[tuple[str, list[str]]]:
    """An index that answers nothing and keeps every Authorization header sent to it."""
    with servers.collector() as served:
        yield served


def resolve_with_netrc(tmp_path: Path, index: str, netrc: str) -> None:
    """uv resolves one package from ``index`` with the settings packsync hands it."""
    (tmp_path / "netrc").write_text(netrc)
    (tmp_path / "requirements.in").write_text("six\n")
    settings = discover({"HOME": str(tmp_path), "NETRC": str(tmp_path / "netrc"),
                         "PIP_CONFIG_FILE": "/dev/null", "UV_NO_CONFIG": "1",
                         "UV_DEFAULT_INDEX": index + "/simple/"}, cwd=tmp_path)
    done = run_uv(["pip", "compile", "--no-header", "--cache-dir", str(tmp_path / "uv-cache"),
                   str(tmp_path / "requirements.in")], extra_env=settings.uv_environment())
    assert done.returncode != 0  # the collector has no package: only its headers matter


@pytest.mark.attack("netrc default entry sent to every index")
def test_a_netrc_default_entry_reaches_no_index_unless_asked_for(
    tmp_path: Path, collector: tuple[str, list[str]]
) -> None:
    url, headers = collector
    netrc = f"machine private.example login bob password other\ndefault login eve password {SECRET}\n"
    resolve_with_netrc(tmp_path, url, netrc)
    assert headers and not [h for h in headers if h]

    # the control: asked for, the default entry is what such an index receives
    headers.clear()
    with dask.config.set({"packsync.netrc-default": True}):
        resolve_with_netrc(tmp_path, url, netrc)
    sent = "Basic " + base64.b64encode(f"eve:{SECRET}".encode()).decode()
    assert sent in headers


@pytest.mark.attack("netrc default entry sent to every index")
def test_a_machine_line_still_wins_over_the_default(tmp_path: Path,
                                                    collector: tuple[str, list[str]]) -> None:
    url, headers = collector
    resolve_with_netrc(tmp_path, url, f"machine 127.0.0.1 login ann password m4chine\n"
                                      f"default login eve password {SECRET}\n")
    sent = "Basic " + base64.b64encode(b"ann:m4chine").decode()
    assert headers and set(headers) <= {sent, ""} and sent in headers


@pytest.mark.attack("netrc default entry sent to every index")
def test_a_jobs_uv_sends_a_netrc_default_entry_nowhere_unless_asked(
    tmp_path: Path, collector: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker command's uv (on a batch job's machine) resolves the lock's named indexes
    with the job's own netrc: its ``machine`` line, never its ``default`` entry; an SSH
    host's uv reads no netrc of the host at all."""
    url, headers = collector
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login ann password m4chine\n"
                     f"default login eve password {SECRET}\n")
    for variable in ("UV_DEFAULT_INDEX", "UV_INDEX", "UV_INDEX_URL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("NETRC", str(netrc))  # what uv would read by itself on that machine
    (tmp_path / "requirements.in").write_text("six\n")
    default = "Basic " + base64.b64encode(f"eve:{SECRET}".encode()).decode()
    machine = "Basic " + base64.b64encode(b"ann:m4chine").decode()
    for asked in ("", "true"):  # the second run is the control: asked for, it is sent
        headers.clear()
        job = {"NETRC": str(netrc), "PACKSYNC_NETRC_DEFAULT": asked}
        env = uv_environment({**job_index_environment([f"private={url}/simple/"], job),
                              "UV_DEFAULT_INDEX": url.replace("127.0.0.1", "localhost") + "/pypi/"})
        done = subprocess.run([uv_binary(), "pip", "compile", "--no-config", "--cache-dir",
                               str(tmp_path / "uv-cache"), str(tmp_path / "requirements.in")],
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode != 0 and headers
        assert machine in headers  # the private index gets its machine line
        assert (default in headers) == bool(asked), asked  # another index: only if asked
    # an SSH host installing in index mode: the client hands uv the indexes and their
    # credentials; the host's own netrc (default entry included) is read by nobody
    headers.clear()
    env = uv_environment({"UV_INDEX": f"private={url}/simple/",
                          "UV_DEFAULT_INDEX": url.replace("127.0.0.1", "localhost") + "/pypi/"})
    done = subprocess.run([uv_binary(), "pip", "compile", "--no-config", "--cache-dir",
                           str(tmp_path / "uv-cache"), str(tmp_path / "requirements.in")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and headers
    assert default not in headers and machine not in headers


def installed_from_git(site: Path, url: str) -> None:
    info = site / "fromgit-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fromgit\nVersion: 0.1\n")
    (info / "direct_url.json").write_text(json.dumps(
        {"url": url, "vcs_info": {"vcs": "git", "commit_id": "c0ffee" * 6 + "c0ff"}}))


GIT_TOKEN = "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


@pytest.mark.attack("token as a Git URL's username")
@pytest.mark.parametrize("url", [
    f"https://{GIT_TOKEN}@git.example/org/repo.git",
    f"https://{GIT_TOKEN}:x-oauth-basic@git.example/org/repo.git",
    f"git+https://{GIT_TOKEN}:@git.example/org/repo.git",
    f"https://oauth2:{GIT_TOKEN}@git.example/org/repo.git",
])
def test_a_git_token_in_the_url_stays_out_of_the_snapshot(tmp_path: Path, url: str) -> None:
    installed_from_git(tmp_path, url)
    (found,) = scan_dists([str(tmp_path)])
    recorded = json.dumps(found.to_dict())
    assert GIT_TOKEN not in recorded and "git.example/org/repo.git" in recorded


def a_lock(python: str, **source: object) -> str:
    package = {"name": "evil", "version": "1.0", **(source or {
        "wheels": [{"url": "https://x/evil-1.0-py3-none-any.whl", "hashes": {"sha256": "1" * 64}}]})}
    return render(empty_document() | {"packages": [package]}, PacksyncTable(python=python))


@pytest.mark.attack("hostile lock")
@pytest.mark.parametrize(("text", "message"), [
    (a_lock("/tmp/evil/python3"), "tool.packsync.python is '/tmp/evil/python3', not a Python"),
    (a_lock("3.11 --python /tmp/evil"), "not a Python version"),
    (a_lock("3.11.7", directory={"path": "/tmp/evil"}), "evil from a directory source"),
    (a_lock("3.11.7", vcs={"type": "git", "url": "https://x/evil.git", "commit-id": "1" * 40}),
     "evil from a vcs source"),
])
def test_a_lock_packsync_lock_did_not_write_is_refused_naming_it(text: str, message: str) -> None:
    with pytest.raises(LockError, match=re.escape(message)) as refused:
        Lock.from_text(text, "/tmp/their/pylock.toml")
    assert "/tmp/their/pylock.toml" in str(refused.value)


@pytest.mark.parametrize("version", ["3.11.7", "3.13.0rc1", "3.14.0a2", "3.12.1+", "3.12"])
def test_the_python_versions_packsync_lock_writes_are_accepted(version: str) -> None:
    assert Lock.from_text(a_lock(version)).python == version


@pytest.mark.attack("store objects readable by other users")
def test_store_objects_on_the_client_and_on_hosts_are_the_owners_alone(tmp_path: Path) -> None:
    wheel = tmp_path / "mylib-1.0-py3-none-any.whl"
    wheel.write_bytes(b"the wheel of private code")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    store = LocalStore(tmp_path / "client-store")
    store.put(wheel, digest)
    store.fetch(digest, tmp_path / "fetched" / wheel.name)
    host_store = tmp_path / "host" / "store"
    with wheel.open("rb") as stream:  # as a host receives it on the SSH channel
        receive(stream, None, digest, layout.blob_path(str(host_store), digest))
    kept = [Path(layout.blob_path(str(store.root), digest)), tmp_path / "fetched" / wheel.name,
            Path(layout.blob_path(str(host_store), digest))]
    for path in kept:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    assert stat.S_IMODE(Path(layout.blob_path(str(host_store), digest)).parent.stat().st_mode) \
        & 0o077 == 0
