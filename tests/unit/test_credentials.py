"""Credentials are found where uv and pip look, in uv's order, and are never shown."""

from __future__ import annotations

import json
from pathlib import Path

import keyring
import pytest

from packsync.hostside.uvconfig import index_prefix
from packsync.scan.credentials import find_credentials
from packsync.scan.index_config import Index
from packsync.scan.indexes import discover

BACKEND_DIR = Path(__file__).resolve().parents[1] / "integration" / "keyring_backend"
URL = "https://private.example:8443/simple/"


@pytest.fixture
def file_keyring(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """A real keyring backend over a JSON file, installed for this test only."""
    monkeypatch.syspath_prepend(str(BACKEND_DIR))
    from file_keyring import FileKeyring

    path = tmp_path / "keyring.json"
    monkeypatch.setenv("FILE_KEYRING_PATH", str(path))
    previous = keyring.get_keyring()
    keyring.set_keyring(FileKeyring())
    yield path
    keyring.set_keyring(previous)


@pytest.fixture
def no_keyring(tmp_path, monkeypatch, file_keyring):  # type: ignore[no-untyped-def]
    return file_keyring  # an empty one: the machine's keyring never answers in these tests


def index(url: str = URL, name: str = "") -> Index:
    return Index(url=url, role="extra", origin="$UV_INDEX", name=name)


def netrc(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "netrc"
    path.write_text(text)
    return {"NETRC": str(path), "HOME": str(tmp_path)}


def test_url_userinfo_first(tmp_path, no_keyring):
    env = netrc(tmp_path, "machine private.example login bob password from-netrc\n")
    found = find_credentials(index("https://al%40ce:p%3Ass@private.example/simple/", "corp"),
                             {**env, "UV_INDEX_CORP_PASSWORD": "from-env"})
    assert found is not None and found.source == "URL"
    assert (found.username, found.password) == ("al@ce", "p:ss")
    assert found.userinfo() == "al%40ce:p%3Ass"
    assert "p:ss" not in repr(found) and "al@ce" not in repr(found)


def test_uv_variables_for_named_index_before_netrc(tmp_path, no_keyring):
    env = netrc(tmp_path, "machine private.example login bob password from-netrc\n")
    prefix = index_prefix("corp-index.v2")
    assert prefix == "UV_INDEX_CORP_INDEX_V2_"
    found = find_credentials(index(name="corp-index.v2"),
                             {**env, prefix + "USERNAME": "ci", prefix + "PASSWORD": "from-env"})
    assert found is not None and (found.username, found.password) == ("ci", "from-env")
    assert found.source == f"${prefix}USERNAME/${prefix}PASSWORD"
    # An unnamed index has no variables: netrc answers, by host (the port does not matter).
    found = find_credentials(index(), {**env, prefix + "PASSWORD": "from-env"})
    assert found is not None and found.password == "from-netrc"
    assert found.source == f"netrc ({env['NETRC']})"


def test_netrc_entry_for_another_user_is_ignored(tmp_path, no_keyring):
    env = netrc(tmp_path, "machine private.example login bob password from-netrc\n")
    found = find_credentials(index("https://alice@private.example/simple/"), env)
    assert found is not None and found.source == "URL"  # the username alone, as a token
    assert (found.username, found.password) == ("alice", "")


def test_keyring_by_url_then_host_with_and_without_username(tmp_path, file_keyring):
    env = {"HOME": str(tmp_path), "NETRC": str(tmp_path / "absent")}
    plain = "https://private.example:8443/simple/"
    file_keyring.write_text(json.dumps({"private.example:8443": {"kim": "by-host"}}))
    found = find_credentials(index(), env)
    assert found is not None and (found.username, found.password, found.source) == (
        "kim", "by-host", "keyring")
    file_keyring.write_text(json.dumps({plain: {"kim": "by-url"},
                                        "private.example:8443": {"kim": "by-host"}}))
    assert find_credentials(index(), env).password == "by-url"  # type: ignore[union-attr]
    # With a username in the URL, keyring is asked for that user's password only.
    with_user = index("https://kim@private.example:8443/simple/")
    assert find_credentials(with_user, env).password == "by-url"  # type: ignore[union-attr]
    other = find_credentials(index("https://lee@private.example:8443/simple/"), env)
    assert other is not None and other.password == "" and other.username == "lee"


def test_nothing_found(tmp_path, no_keyring):
    assert find_credentials(index(), {"HOME": str(tmp_path)}) is None
    assert find_credentials(index("/local/wheels"), {"HOME": str(tmp_path)}) is None


def test_settings_hand_resolved_credentials_to_uv_only_in_its_environment(tmp_path, no_keyring):
    env = netrc(tmp_path, "machine private.example login bob password n3trc-secret\n")
    env.update({"PIP_CONFIG_FILE": "/dev/null", "UV_INDEX": f"corp={URL} https://pypi.example/s",
                "UV_INDEX_CORP_USERNAME": "ci", "UV_INDEX_CORP_PASSWORD": "env-s3cret"})
    settings = discover(env, prefix=str(tmp_path), cwd=tmp_path)
    uv_env = settings.uv_environment()
    assert uv_env["UV_INDEX"].split() == [
        "https://ci:env-s3cret@private.example:8443/simple/", "https://pypi.example/s"]
    rows = {r["url"]: r for r in settings.describe()}
    assert rows[URL]["credentials"] == "$UV_INDEX_CORP_USERNAME/$UV_INDEX_CORP_PASSWORD"
    assert rows["https://pypi.example/s"]["credentials"] == ""
    for text in (repr(settings), str(settings.redacted().to_dict()), json.dumps(rows),
                 uv_env["PACKSYNC_INDEX_SOURCES"]):
        assert "env-s3cret" not in text and "n3trc-secret" not in text
