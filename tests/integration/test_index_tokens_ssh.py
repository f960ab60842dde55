"""An SSH host in index mode installs from an index whose URL carries a token: the token
reaches the host's uv on the SSH channel only, and no file on the host or the client holds
it (the host's own uv cache aside, which is uv's)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_index_tokens import (
    MESSAGE,
    MODULE,
    PACKAGE,
    PLACEHOLDER,
    TOKEN,
    TokenIndex,
    files_with_token,
    with_index,
)
from tests.integration.test_index_tokens import index as index  # noqa: F401 - the fixture
from tests.support import sshd
from tests.support.venvs import BASE_PYTHON, REPO, UV, ClientEnv, hermetic_env, make_client

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sys.platform != "linux" or sshd.available() is not None,
                       reason=str(sshd.available())),
]

ON_HOST = f"""
import json, os, packsync

def probe():
    import sys, {MODULE}
    return {{"message": {MODULE}.MESSAGE, "prefix": sys.prefix}}

HOSTS = json.loads(os.environ["TEST_HOSTS"])
with packsync.Cluster(hosts=HOSTS, threads_per_worker=1, dashboard_address=None,
                      host_install="index") as cluster:
    with cluster.get_client() as client:
        result = client.submit(probe).result()
    print(repr(cluster))
print(json.dumps(result))
"""


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, index: TokenIndex) -> ClientEnv:
    env = make_client(tmp_path_factory.mktemp("token-ssh-client"), "asyncssh")
    subprocess.run([UV, "pip", "install", "--quiet", "--no-deps", "--python", str(env.python),
                    "--index-url", index.url, PACKAGE], check=True, env=hermetic_env())
    return env


@pytest.fixture
def host(client: ClientEnv, tmp_path: Path) -> Iterator[sshd.SshHost]:
    key = sshd.client_key(tmp_path / "client-key")
    (tmp_path / "cache").mkdir(mode=0o700)  # the client's cache: hidden from the host
    hidden = (str(client.path), str(client.cache), str(REPO), str(tmp_path / "cache"))
    with sshd.loopback_hosts(("gamma",), tmp_path / "hosts", key, hidden) as [started]:
        yield started


def test_an_index_mode_host_gets_the_token_on_the_ssh_channel_only(
        client: ClientEnv, index: TokenIndex, host: sshd.SshHost, tmp_path: Path):
    shared = dataclasses.replace(client, cache=tmp_path / "cache")
    before = len(index.downloads)
    ran = shared.run(ON_HOST, check=False, timeout=600,
                     TEST_HOSTS=json.dumps([host.spec(python=BASE_PYTHON)]),
                     **with_index(index, tmp_path))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    result = json.loads(ran.stdout.strip().splitlines()[-1])
    assert result["message"] == MESSAGE
    assert result["prefix"].startswith("/root/.cache/packsync/envs/")
    assert len(index.downloads) > before  # the host's uv fetched it from the live URL
    [env] = [p for p in (host.cache / "envs").iterdir() if p.is_dir()]
    assert PLACEHOLDER in (env / ".packsync" / "pylock.toml").read_text()
    assert not list(env.rglob("pylock.live.toml"))
    uv_cache = host.home / ".cache" / "uv"
    on_host = [p for p in files_with_token(host.home) if not Path(p).is_relative_to(uv_cache)]
    assert on_host == []
    assert files_with_token(tmp_path / "cache", shared.workdir) == []
    assert TOKEN not in ran.stdout + ran.stderr
