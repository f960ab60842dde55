"""Conda channel credentials read from the files of rattler, mamba and conda, in memory."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import quote_plus

import pytest

from packsync.conda.auth import (
    ChannelAccess,
    ChannelCredential,
    channel_access,
    masked,
    read_credentials,
    refusal,
    refused_channels,
    with_conda_token,
)
from packsync.errors import LockError

CHANNEL = "https://conda.corp.example/private"


def _write(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def _env(home: Path, **extra: str) -> dict[str, str]:
    return {"HOME": str(home), **extra}


def test_mamba_basic_credentials_become_a_header_for_that_channel_only(home: Path) -> None:
    _write(home / ".mamba/auth/authentication.json",
           {"conda.corp.example": {"BasicHTTP": {"username": "ann", "password": "s3cr3t"}}})
    access = channel_access({CHANNEL: CHANNEL}, _env(home))
    basic = base64.b64encode(b"ann:s3cr3t").decode()
    assert access.urls == {CHANNEL: CHANNEL}
    assert access.headers_for("conda.corp.example", "/private/linux-64/repodata.json") == {
        "Authorization": f"Basic {basic}"}
    assert access.headers_for("conda.corp.example", "/other/linux-64/repodata.json") is None
    assert access.headers_for("cdn.example", "/private/linux-64/x.conda") is None
    assert access.secrets == {"s3cr3t", basic}
    assert access.origins[CHANNEL].endswith("authentication.json")
    assert "s3cr3t" not in repr(access)


def test_a_conda_token_goes_into_the_live_url(home: Path) -> None:
    _write(home / ".mamba/auth/authentication.json",
           {"*.corp.example": {"CondaToken": "tok123abc"}})
    access = channel_access({CHANNEL: CHANNEL}, _env(home))
    assert access.urls[CHANNEL] == "https://conda.corp.example/t/tok123abc/private"
    assert access.headers == ()
    assert with_conda_token("http://h:81/c/", "x") == "http://h:81/t/x/c"


def test_rattler_file_wins_over_mamba_and_its_most_specific_entry_counts(home: Path) -> None:
    rattler = _write(home / "r.json", {
        "conda.corp.example": {"BearerToken": "host-wide"},
        "conda.corp.example/private": {"BearerToken": "this-channel"},
    })
    _write(home / ".mamba/auth/authentication.json",
           {"conda.corp.example": {"BearerToken": "from-mamba"}})
    access = channel_access({CHANNEL: CHANNEL}, _env(home, RATTLER_AUTH_FILE=str(rattler)))
    assert access.headers_for("conda.corp.example", "/private/noarch/x.conda") == {
        "Authorization": "Bearer this-channel"}
    other = "https://conda.corp.example/public"
    assert channel_access({other: other}, _env(home, RATTLER_AUTH_FILE=str(rattler))
                          ).headers_for("conda.corp.example", "/public") == {
        "Authorization": "Bearer host-wide"}
    # without $RATTLER_AUTH_FILE, rattler's default file, then mamba's
    assert channel_access({CHANNEL: CHANNEL}, _env(home)).headers_for(
        "conda.corp.example", "/private") == {"Authorization": "Bearer from-mamba"}


def test_a_port_in_the_key_must_match() -> None:
    keyed = ChannelCredential(key="localhost:8080", kind="bearer", secret="x", origin="f")
    assert keyed.matches("http://localhost:8080/c")
    assert not keyed.matches("http://localhost:9090/c")
    assert ChannelCredential(key="localhost", kind="bearer", secret="x", origin="f").matches(
        "http://localhost:9090/c")
    assert not ChannelCredential(key="*.corp.example", kind="bearer", secret="x",
                                 origin="f").matches("https://corp.example.evil.test/c")


def test_a_url_that_already_holds_a_credential_is_kept(home: Path) -> None:
    _write(home / ".mamba/auth/authentication.json",
           {"conda.corp.example": {"CondaToken": "from-file"}})
    live = "https://conda.corp.example/t/in-url/private"
    access = channel_access({"https://conda.corp.example/t/***/private": live}, _env(home))
    assert list(access.urls.values()) == [live] and not access.origins


def test_conda_token_files_of_anaconda_client(home: Path, tmp_path: Path) -> None:
    binstar = tmp_path / "binstar"
    _write(binstar / "data" / (quote_plus("https://api.anaconda.org") + ".token"), "ac-tok-1")
    channel = "https://conda.anaconda.org/corp"
    access = channel_access({channel: channel}, _env(home, BINSTAR_CONFIG_DIR=str(binstar)))
    assert access.urls[channel] == "https://conda.anaconda.org/t/ac-tok-1/corp"
    # the default place on Linux
    _write(home / ".config/binstar" / (quote_plus("https://repo.corp.example") + ".token"),
           "ac-tok-2\n")
    other = "https://repo.corp.example/x"
    assert channel_access({other: other}, _env(home)).urls[other] == (
        "https://repo.corp.example/t/ac-tok-2/x")


def test_a_token_in_condarc_channel_urls(home: Path) -> None:
    _write(home / ".condarc", "channels:\n  - https://conda.corp.example/t/rc-token-9/private\n"
                              "  - defaults\nchannel_alias: https://alias.example\n")
    access = channel_access({CHANNEL: CHANNEL}, _env(home))
    assert access.urls[CHANNEL] == "https://conda.corp.example/t/rc-token-9/private"
    assert access.secrets == {"rc-token-9"}


def test_damaged_files_are_skipped(home: Path) -> None:
    _write(home / ".mamba/auth/authentication.json", "{not json")
    _write(home / ".condarc", "channels: [unclosed")
    assert all(group == () for group in read_credentials(_env(home)))
    assert channel_access({CHANNEL: CHANNEL}, _env(home)) == ChannelAccess(
        urls={CHANNEL: CHANNEL})


def test_a_refusal_names_the_channel_and_the_fix(home: Path) -> None:
    other = "https://other.example/c"
    access = channel_access({CHANNEL: CHANNEL, other: other}, _env(home))
    message = ("HTTP status client error (401 Unauthorized) for url "
               "(https://conda.corp.example/private/noarch/repodata.json)")
    assert refused_channels(message, access) == [CHANNEL]
    assert refused_channels("connection refused", access) == []
    error = refusal(LockError, message, access, action="solving")
    assert error is not None and isinstance(error, LockError)
    assert f"the conda channel {CHANNEL} refused this machine" in error.message
    assert "none were found" in error.hint and "authentication.json" in error.hint


def test_a_refused_credential_says_where_it_came_from(home: Path) -> None:
    _write(home / ".mamba/auth/authentication.json",
           {"conda.corp.example": {"CondaToken": "old-token-77"}})
    access = channel_access({CHANNEL: CHANNEL}, _env(home))
    message = masked("403 Forbidden for url (https://conda.corp.example/t/old-token-77/private/"
                     "linux-64/repodata.json)", access)
    assert "old-token-77" not in message
    error = refusal(LockError, message, access, action="solving")
    assert error is not None
    assert "credentials from" in error.hint and "authentication.json" in error.hint
    assert "old-token-77" not in str(error)


def test_a_credential_for_plain_http_off_loopback_is_warned_about(
        home: Path, caplog: pytest.LogCaptureFixture) -> None:
    _write(home / ".mamba/auth/authentication.json",
           {"conda.corp.example": {"BearerToken": "plain-http-tok"}, "localhost": {
               "BearerToken": "loop-tok"}})
    plain, local = "http://conda.corp.example/c", "http://localhost:8000/c"
    with caplog.at_level("WARNING", logger="packsync.conda.auth"):
        channel_access({plain: plain, local: local}, _env(home))
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and plain in warned[0] and "plain HTTP" in warned[0]
    assert "plain-http-tok" not in warned[0]
