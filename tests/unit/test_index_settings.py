"""uv's per-index settings are read from uv's files, described without secrets, and written
for uv into a private file whose indexes keep their order and whose credentials stay in
the environment."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from packsync.errors import ScanError
from packsync.hostside import uvconfig
from packsync.hostside.protocol import HostError
from packsync.scan.index_config import IndexOptions
from packsync.scan.indexes import discover

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TOKEN = "cs-" + "a1b2c3d4e5f6a7b8c9d0"


def settings_of(tmp_path: Path, config: str, **extra: str):  # type: ignore[no-untyped-def]
    (tmp_path / "project").mkdir(parents=True, exist_ok=True)
    (tmp_path / "project" / "uv.toml").write_text(config)
    env = {"HOME": str(tmp_path / "home"), "XDG_CONFIG_DIRS": str(tmp_path / "xdg"),
           "PIP_CONFIG_FILE": os.devnull, "NETRC": str(tmp_path / "netrc"),
           "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring", **extra}
    return discover(env, prefix=str(tmp_path / "prefix"), cwd=tmp_path / "project")


CONFIG = f"""\
[[index]]
name = "corp"
url = "https://alice:s3cret@pkgs.example.com/simple/"
authenticate = "always"
ignore-error-codes = [401, 403]
cache-control = {{ api = "max-age=60", files = "max-age=3600, immutable" }}

[[index]]
url = "https://dl.cloudsmith.io/{TOKEN}/org/repo/python/simple/"
ignore-error-codes = []

[[index]]
name = "wheels"
url = "https://files.example.com/wheels/"
format = "flat"
cache-control = {{ files = "no-cache" }}

[[index]]
name = "plain"
url = "https://plain.example.com/simple/"
"""


def test_settings_are_read_from_uv_files_and_kept_with_their_index(tmp_path):
    settings = settings_of(tmp_path, CONFIG)
    corp, cloudsmith, plain, wheels = [i for i in settings.indexes if i.origin != "default"]
    assert corp.options == IndexOptions(authenticate="always", ignore_error_codes=(401, 403),
                                        cache_control_api="max-age=60",
                                        cache_control_files="max-age=3600, immutable")
    assert cloudsmith.options.ignore_error_codes == ()  # set, and empty: not uv's default
    assert (wheels.role, wheels.options.cache_control_files) == ("find-links", "no-cache")
    assert not plain.options and plain.options.to_uv() == {}
    shown = {r["name"]: r["settings"] for r in settings.describe()}
    assert shown["corp"] == ("authenticate=always, ignore-error-codes=401,403, "
                             "cache-control=api:max-age=60,files:max-age=3600, immutable")
    assert shown["plain"] == "" and shown["wheels"] == "cache-control=files:no-cache"


def test_values_uv_would_refuse_are_left_out(tmp_path, caplog):
    settings = settings_of(tmp_path, '[[index]]\nurl = "https://x.example/simple"\n'
                                     'authenticate = "sometimes"\nignore-error-codes = ["403"]\n'
                                     'cache-control = "max-age=60"\n')
    [index] = [i for i in settings.indexes if i.origin != "default"]
    assert not index.options
    assert "authenticate = 'sometimes'" in caplog.text and "ignore-error-codes" in caplog.text
    assert "cache-control = 'max-age=60'" in caplog.text


def test_the_settings_travel_beside_the_indexes_without_a_secret(tmp_path):
    settings = settings_of(tmp_path, CONFIG)
    env = settings.uv_environment()
    described = json.loads(env[uvconfig.VARIABLE])
    assert "s3cret" not in env[uvconfig.VARIABLE] and TOKEN not in env[uvconfig.VARIABLE]
    assert described == [
        {"url": "https://pypi.org/simple", "format": "simple"},
        {"url": "https://pkgs.example.com/simple/", "name": "corp", "format": "simple",
         "authenticate": "always", "ignore-error-codes": [401, 403],
         "cache-control": {"api": "max-age=60", "files": "max-age=3600, immutable"}},
        {"url": "https://dl.cloudsmith.io/{packsync-secret:dl-cloudsmith-io-1}/org/repo/"
                "python/simple/", "format": "simple", "ignore-error-codes": []},
        {"url": "https://plain.example.com/simple/", "name": "plain", "format": "simple"},
        {"url": "https://files.example.com/wheels/", "name": "wheels", "format": "flat",
         "cache-control": {"files": "no-cache"}},
    ]
    assert uvconfig.VARIABLE not in settings_of(tmp_path / "b", '[[index]]\nurl = '
                                                '"https://plain.example/simple"\n').uv_environment()


def test_authenticate_always_without_credentials_is_refused_naming_the_index(tmp_path):
    settings = settings_of(tmp_path, '[[index]]\nname = "corp"\n'
                                     'url = "https://pkgs.example.com/simple/"\n'
                                     'authenticate = "always"\n')
    settings.uv_environment()  # a launch whose lock and environment are cached needs none
    with pytest.raises(ScanError) as caught:
        settings.check_credentials()
    error = caught.value
    assert error.message.startswith("the index corp (https://pkgs.example.com/simple/, "
                                    f"configured in {tmp_path / 'project' / 'uv.toml'})")
    assert "machine pkgs.example.com login USER" in error.hint
    assert "UV_INDEX_CORP_USERNAME/_PASSWORD" in error.hint
    # found in netrc: handed to uv
    (tmp_path / "netrc").write_text("machine pkgs.example.com login bob password n3trc\n")
    found = settings_of(tmp_path, (tmp_path / "project" / "uv.toml").read_text())
    assert "bob:n3trc@pkgs.example.com" in found.uv_environment()["UV_INDEX"]


def test_authenticate_never_sends_no_credential_found_for_the_host(tmp_path):
    (tmp_path / "netrc").write_text("machine pkgs.example.com login bob password n3trc\n")
    settings = settings_of(tmp_path, '[[index]]\nurl = "https://pkgs.example.com/simple/"\n'
                                     'authenticate = "never"\n')
    env = settings.uv_environment()
    assert env["UV_INDEX"] == "https://pkgs.example.com/simple/"
    assert "n3trc" not in json.dumps(env)
    assert [r["credentials"] for r in settings.describe()] == ["", ""]


def test_the_configuration_file_keeps_order_and_moves_credentials_to_variables(tmp_path):
    settings = settings_of(tmp_path, CONFIG, UV_DEFAULT_INDEX="https://mirror.example/simple/")
    given = settings.uv_environment()
    with uvconfig.configured(given) as env:
        path = Path(env["UV_CONFIG_FILE"])
        text = path.read_text()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        config = tomllib.loads(text)
    assert not path.parent.exists(), "the file outlived the command"
    assert "s3cret" not in text and "alice" not in text
    assert env["UV_INDEX_CORP_USERNAME"] == "alice" and env["UV_INDEX_CORP_PASSWORD"] == "s3cret"
    for gone in ("UV_INDEX", "UV_DEFAULT_INDEX", uvconfig.VARIABLE):
        assert gone not in env
    assert "UV_FIND_LINKS" not in env  # the one flat index has settings: in the file
    assert config["index"] == [
        {"name": "corp", "url": "https://pkgs.example.com/simple/", "authenticate": "always",
         "ignore-error-codes": [401, 403],
         "cache-control": {"api": "max-age=60", "files": "max-age=3600, immutable"}},
        {"name": "packsync-1", "url": f"https://dl.cloudsmith.io/{TOKEN}/org/repo/python/simple/",
         "ignore-error-codes": []},
        {"name": "plain", "url": "https://plain.example.com/simple/"},
        {"name": "wheels", "url": "https://files.example.com/wheels/", "format": "flat",
         "cache-control": {"files": "no-cache"}},
        {"name": "packsync-2", "url": "https://mirror.example/simple/", "default": True},
    ]


def test_without_settings_the_environment_is_left_as_it_is(tmp_path):
    given = {"UV_INDEX": "a=https://u:p@a.example/simple/", "UV_FIND_LINKS": "/w"}
    with uvconfig.configured(given) as env:
        assert env == given
    with pytest.raises(HostError, match=uvconfig.VARIABLE), \
            uvconfig.configured({uvconfig.VARIABLE: "{}"}):
        pass


def test_the_directory_of_a_process_that_died_is_removed_by_the_next(tmp_path, monkeypatch):
    """A job killed while uv ran leaves its configuration (a URL token, maybe) behind: the
    next uv run of the user's on the machine removes it, and nothing of a live process or
    of another user."""
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    dead = tmp_path / f"{uvconfig.DIRECTORY_PREFIX}{ended.stdout.strip()}-abc"
    live = tmp_path / f"{uvconfig.DIRECTORY_PREFIX}{os.getpid()}-abc"
    theirs = tmp_path / f"{uvconfig.DIRECTORY_PREFIX}{ended.stdout.strip()}-def"
    for directory in (dead, live, theirs):
        directory.mkdir()
        (directory / "uv.toml").write_text(f'url = "https://dl.example/{TOKEN}/simple/"\n')
    if os.geteuid() == 0:
        os.chown(theirs, 65534, 65534)
    settings = settings_of(tmp_path, CONFIG)
    with uvconfig.configured(settings.uv_environment()) as env:
        assert Path(env["UV_CONFIG_FILE"]).parent.name.startswith(
            f"{uvconfig.DIRECTORY_PREFIX}{os.getpid()}-")
    assert not dead.exists() and live.exists()
    assert theirs.exists() or os.geteuid() != 0


def test_a_users_uv_config_file_is_read_as_uv_reads_it_and_never_steers_packsyncs_uv(
        tmp_path, monkeypatch):
    from packsync.scan.index_config import uv_config_files
    from packsync.uvtool import uv_environment

    mine = tmp_path / "mine.toml"
    assert uv_config_files({"UV_NO_CONFIG": "1", "UV_CONFIG_FILE": str(mine)},
                           tmp_path) == [mine]  # uv reads it even so
    monkeypatch.setenv("UV_CONFIG_FILE", str(mine))
    assert "UV_CONFIG_FILE" not in uv_environment()
