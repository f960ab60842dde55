"""A package that exists only on a password-protected index reaches the workers, for every
credential route; refused or missing credentials give clear errors; no secret is left in
any file packsync writes, nor in what it prints."""

from __future__ import annotations

import dataclasses
import json
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w

from tests.support.private_index import MESSAGE, PACKAGE, PrivateIndex, serve_index
from tests.support.venvs import ClientEnv, make_client

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

pytestmark = pytest.mark.integration

USER = "alice"
PASSWORD = "pw-" + secrets.token_hex(12)
TOKEN = "tok-" + secrets.token_hex(12)
KEYRING_BACKEND = Path(__file__).parent / "keyring_backend"

WORKERS_IMPORT_IT = """
import json, os
import packsync
from packsync.redact import secrets_in
from packsync.scan.indexes import discover

def probe():
    import sys, psprivate_probe
    return {"message": psprivate_probe.MESSAGE, "prefix": sys.prefix}

# The values packsync hands uv, to look for in the workers' environment (names only shown).
handed = secrets_in(discover().uv_environment())
own = {k for k, v in os.environ.items() if any(s in v for s in handed)}

def leaked_variables(values=tuple(handed)):
    import os
    return sorted(k for k, v in os.environ.items() if any(s in v for s in values))

with packsync.Cluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
    with cluster.get_client() as client:
        result = client.submit(probe).result()
        leaked = sorted({k for names in client.run(leaked_variables).values() for k in names})
    print(json.dumps({"worker": result, "env": str(cluster.prepared.environment.path),
                      "handed": bool(handed), "leaked": leaked, "own": sorted(own)}))
"""


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateIndex]:
    with serve_index(tmp_path_factory.mktemp("index"), {USER: PASSWORD, "__token__": TOKEN}) as served:
        yield served


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, index: PrivateIndex) -> ClientEnv:
    """One client venv for every route: packsync, keyring, and the private package."""
    env = make_client(tmp_path_factory.mktemp("private-client"), "keyring")
    index.install_probe(env.python, USER, PASSWORD)
    return env


def route_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No netrc or keyring unless the route adds one; a uv cache without the private wheel,
    so that installing it means downloading it from the index with the credentials."""
    return {"NETRC": str(tmp_path / "no-netrc"), "UV_CACHE_DIR": str(tmp_path / "uv-cache"),
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring", **extra}


def assert_no_secret(*places: Path | str) -> None:
    """Neither the password nor the token in any file under these paths, nor in these texts."""
    needles = [s.encode() for s in (PASSWORD, TOKEN)]
    for place in places:
        if isinstance(place, str):
            assert not any(n.decode() in place for n in needles), "a secret in the output"
            continue
        for path in [place] if place.is_file() else place.rglob("*"):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                assert not any(n in data for n in needles), f"a secret in {path}"


def launch(shared: ClientEnv, tmp_path: Path, env: dict[str, str], source: str) -> None:
    client = dataclasses.replace(shared, cache=tmp_path / "cache")  # build, lock, install anew
    listed = client.packsync("indexes", "--json", **env)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)["indexes"]
    private = [r for r in rows if "127.0.0.1" in r["url"]]
    assert [r["credentials"] for r in private] == [source]

    result = client.run(WORKERS_IMPORT_IT, **env)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["worker"]["message"] == MESSAGE
    assert report["worker"]["prefix"] == report["env"]
    assert report["env"].startswith(str(tmp_path / "cache"))
    assert report["handed"] is True
    # packsync adds no credential to the workers' environment (the client's own variables
    # are inherited by Dask's processes as the client set them).
    assert set(report["leaked"]) <= set(report["own"])
    assert_no_secret(tmp_path / "cache", client.workdir, result.stdout, result.stderr,
                     listed.stdout, listed.stderr)


@pytest.mark.attack("index password in files produced")
def test_credentials_in_the_url(client: ClientEnv, index: PrivateIndex, tmp_path):
    env = route_env(tmp_path, UV_INDEX=index.url_with(USER, PASSWORD))
    launch(client, tmp_path, env, "URL")


@pytest.mark.attack("index password in files produced")
def test_credentials_from_netrc(client: ClientEnv, index: PrivateIndex, tmp_path):
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine {index.host} login {USER} password {PASSWORD}\n")
    env = route_env(tmp_path, NETRC=str(netrc), PIP_EXTRA_INDEX_URL=index.url)
    launch(client, tmp_path, env, f"netrc ({netrc})")


@pytest.mark.attack("index password in files produced")
def test_token_from_keyring(client: ClientEnv, index: PrivateIndex, tmp_path):
    store = tmp_path / "keyring.json"
    store.write_text(json.dumps({index.url: {"__token__": TOKEN}}))
    env = route_env(tmp_path, UV_INDEX=index.url, PYTHONPATH=str(KEYRING_BACKEND),
                    PYTHON_KEYRING_BACKEND="file_keyring.FileKeyring",
                    FILE_KEYRING_PATH=str(store))
    launch(client, tmp_path, env, "keyring")


@pytest.mark.attack("index password in files produced")
def test_credentials_from_uv_index_variables(client: ClientEnv, index: PrivateIndex, tmp_path):
    env = route_env(tmp_path, UV_INDEX=f"private={index.url}",
                    UV_INDEX_PRIVATE_USERNAME=USER, UV_INDEX_PRIVATE_PASSWORD=PASSWORD)
    launch(client, tmp_path, env,
           "$UV_INDEX_PRIVATE_USERNAME/$UV_INDEX_PRIVATE_PASSWORD")


def lock_with(shared: ClientEnv, tmp_path: Path, output: Path, **extra: str):  # type: ignore[no-untyped-def]
    client = dataclasses.replace(shared, cache=tmp_path / "cache")
    return client.packsync("lock", "-o", str(output), **route_env(tmp_path, **extra))


@pytest.mark.attack("secret echoed in an error")
def test_wrong_password_names_index_and_credential_source(client: ClientEnv,
                                                           index: PrivateIndex, tmp_path):
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine {index.host} login {USER} password not-{PASSWORD}\n")
    result = lock_with(client, tmp_path, tmp_path / "pylock.toml", NETRC=str(netrc),
                       UV_INDEX=f"private={index.url}")
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert f"the index {index.url} [private] (from $UV_INDEX) refused the credentials found " \
           f"in netrc ({netrc}) (403 Forbidden)" in message
    assert PACKAGE in message and f"in netrc ({netrc})" in message
    assert not (tmp_path / "pylock.toml").exists()
    assert_no_secret(tmp_path / "cache", result.stdout, result.stderr)
    assert f"not-{PASSWORD}" not in result.stderr


def test_no_credentials_say_how_to_give_them(client: ClientEnv, index: PrivateIndex, tmp_path):
    result = lock_with(client, tmp_path, tmp_path / "pylock.toml",
                       PIP_EXTRA_INDEX_URL=index.url)
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert f"the index {index.url} (from $PIP_EXTRA_INDEX_URL) needs credentials and none " \
           f"were found (401 Unauthorized)" in message
    assert PACKAGE in message
    assert f"machine {index.host} login USER password SECRET" in message
    assert "keyring set" in message and "UV_INDEX_<NAME>_USERNAME" in message


def test_host_refused_while_installing_a_lock(client: ClientEnv, index: PrivateIndex, tmp_path):
    """A lock resolved with good credentials, installed where the credentials are wrong."""
    full = tmp_path / "pylock.toml"
    locked = lock_with(client, tmp_path, full, UV_INDEX=index.url_with(USER, PASSWORD))
    assert locked.returncode == 0, locked.stderr
    assert_no_secret(full, tmp_path / "cache", locked.stdout, locked.stderr)
    data = tomllib.loads(full.read_text())
    data["packages"] = [p for p in data["packages"] if p["name"] == PACKAGE]
    only_private = tmp_path / "pylock.private.toml"
    only_private.write_text(tomli_w.dumps(data))

    host = dataclasses.replace(client, cache=tmp_path / "host-cache")
    result = host.packsync("materialize", str(only_private),
                           **route_env(tmp_path, UV_INDEX=index.url_with(USER, "wrong-pw"),
                                       UV_CACHE_DIR=str(tmp_path / "host-uv-cache")))
    assert result.returncode == 2
    message = " ".join(result.stderr.split())
    assert "error (materialize)" in message
    shown = index.url.replace("http://", "http://***@")
    assert f"the index {shown} (from $UV_INDEX) refused the credentials found in URL " \
           f"(403 Forbidden) while installing environment" in message
    assert PACKAGE in message and "wrong-pw" not in result.stderr
    assert not list((tmp_path / "host-cache" / "envs").glob("*/.packsync-ready"))
