"""An index whose URL carries an access token in its path (as Cloudsmith's and Gemfury's
do): the lock packsync keeps holds a placeholder, uv installs from the live URL, and the
token is in no file packsync writes, nor in anything it prints."""

from __future__ import annotations

import dataclasses
import functools
import http.server
import json
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.projects import make_wheel
from tests.support.servers import serve_http
from tests.support.simple_index import lay_out
from tests.support.venvs import UV, ClientEnv, hermetic_env, make_client, uv_venv

pytestmark = pytest.mark.integration

TOKEN = "AbC123token456XyZ789"
PACKAGE, MODULE, MESSAGE = "pstoken-probe", "pstoken_probe", "served behind a token"
PLACEHOLDER = "{packsync-secret:corp-1}"

CLUSTER = """
import json, packsync

def probe():
    import sys, pstoken_probe
    return {"message": pstoken_probe.MESSAGE, "prefix": sys.prefix}

with packsync.Cluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
    with cluster.get_client() as client:
        result = client.submit(probe).result()
    print(repr(cluster.prepared.locked), repr(cluster))
    print(json.dumps({"worker": result, "env": str(cluster.prepared.environment.path)}))
"""


@dataclass
class TokenIndex:
    """A simple index served under ``/<TOKEN>/`` only; the wheel downloads it saw."""

    url: str
    downloads: list[str] = field(default_factory=list)


def _handler(root: Path, seen: list[str]) -> type[http.server.SimpleHTTPRequestHandler]:
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if not self.path.startswith(f"/{TOKEN}/"):
                self.send_error(404)  # as a token index answers a wrong or missing token
                return
            if self.path.endswith(".whl"):
                seen.append(self.path)
            super().do_GET()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    return Handler


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenIndex]:
    root = tmp_path_factory.mktemp("token-index")
    wheel = make_wheel(root / "built", PACKAGE, "1.0.0",
                       modules={f"{MODULE}/__init__.py": f"MESSAGE = {MESSAGE!r}\n"})
    lay_out(root / "served" / TOKEN, [wheel])  # /TOKEN/simple/<project>/, /TOKEN/files/...
    served = TokenIndex(url="")
    handler = functools.partial(_handler(root / "served", served.downloads))
    with serve_http(handler) as url:
        served.url = f"{url}/{TOKEN}/simple/"
        yield served


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, index: TokenIndex) -> ClientEnv:
    env = make_client(tmp_path_factory.mktemp("token-client"))
    subprocess.run([UV, "pip", "install", "--quiet", "--no-deps", "--python", str(env.python),
                    "--index-url", index.url, PACKAGE], check=True, env=hermetic_env())
    return env


def with_index(index: TokenIndex, tmp_path: Path, uv_cache: str = "uv-cache") -> dict[str, str]:
    """The client's settings: the token index as uv's index ``corp``, a uv cache of its own."""
    return {"UV_INDEX": f"corp={index.url}", "UV_CACHE_DIR": str(tmp_path / uv_cache),
            "NETRC": str(tmp_path / "no-netrc")}


def files_with_token(*places: Path) -> list[str]:
    found = []
    for place in places:
        for path in [place] if place.is_file() else place.rglob("*"):
            if path.is_file() and not path.is_symlink() and TOKEN.encode() in path.read_bytes():
                found.append(str(path))
    return found


def test_lock_materialize_and_cluster_keep_the_token_out_of_every_file(
        client: ClientEnv, index: TokenIndex, tmp_path: Path):
    shared = dataclasses.replace(client, cache=tmp_path / "cache")
    env = with_index(index, tmp_path)
    outputs: list[str] = []

    locked = shared.packsync("lock", "-o", str(tmp_path / "out") + "/", **env)
    outputs += [locked.stdout, locked.stderr]
    assert locked.returncode == 0, locked.stderr
    lock_text = (tmp_path / "out" / "pylock.toml").read_text()
    probe = next(p for p in lock_text.split("[[packages]]") if f'name = "{PACKAGE}"' in p)
    assert f"/{PLACEHOLDER}/files/simple/pstoken_probe-1.0.0-py3-none-any.whl" in probe
    message = " ".join(locked.stderr.split())
    assert f"holds {PLACEHOLDER} in place of index tokens, so plain uv cannot install it" \
           in message
    assert "--live-urls" in message and "uv pip sync" not in message

    for shown in (shared.packsync("indexes", "--json", **env),
                  shared.packsync("plan", "--json", **env)):
        assert shown.returncode == 0, shown.stderr
        outputs += [shown.stdout, shown.stderr]
    assert "corp" in outputs[-4] and "/***/simple/" in outputs[-4]  # packsync indexes

    ran = shared.run(CLUSTER, **env)
    outputs += [ran.stdout, ran.stderr]
    report = json.loads(ran.stdout.strip().splitlines()[-1])
    assert report["worker"]["message"] == MESSAGE
    assert report["worker"]["prefix"] == report["env"]
    record = Path(report["env"]) / ".packsync" / "pylock.toml"
    assert PLACEHOLDER in record.read_text()
    assert not list(Path(report["env"]).rglob("pylock.live.toml"))

    # another machine with the index configured: uv downloads from the live URL
    host = dataclasses.replace(client, cache=tmp_path / "host-cache")
    before = len(index.downloads)
    store = str(tmp_path / "cache" / "store")  # packsync's own wheel, built on the client
    made = host.packsync("materialize", str(tmp_path / "out" / "pylock.toml"), "--store", store,
                         **with_index(index, tmp_path, "host-uv-cache"))
    outputs += [made.stdout, made.stderr]
    assert made.returncode == 0, made.stderr
    assert len(index.downloads) > before and all(TOKEN in d for d in index.downloads)
    imported = subprocess.run([made.stdout.strip(), "-c", f"import {MODULE}; "
                               f"print({MODULE}.MESSAGE)"], capture_output=True, text=True,
                              check=True)
    assert imported.stdout.strip() == MESSAGE

    # one without it: refused, naming the placeholder and what to configure
    bare = dataclasses.replace(client, cache=tmp_path / "bare-cache")
    refused = bare.packsync("materialize", str(tmp_path / "out" / "pylock.toml"), "--store", store,
                            UV_CACHE_DIR=str(tmp_path / "bare-uv-cache"))
    outputs += [refused.stdout, refused.stderr]
    assert refused.returncode == 2
    message = " ".join(refused.stderr.split())
    assert PLACEHOLDER in message and "full URL" in message
    assert not list((tmp_path / "bare-cache" / "envs").glob("*/.packsync-ready"))

    # with --live-urls plain uv installs it; packsync reads it back as the masked lock
    live = shared.packsync("lock", "--live-urls", "-o", str(tmp_path / "live") + "/", **env)
    assert live.returncode == 0, live.stderr
    written = tmp_path / "live" / "pylock.toml"
    assert TOKEN in written.read_text() and PLACEHOLDER not in written.read_text()
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert "readable by you only" in " ".join(live.stderr.split())
    outputs += [live.stdout]
    plain = uv_venv(tmp_path / "plain")
    synced = subprocess.run([UV, "pip", "sync", "--quiet", "--preview-features", "pylock",
                             "--python", str(plain), str(written)], capture_output=True,
                            text=True, env=hermetic_env(UV_CACHE_DIR=str(tmp_path / "uv-cache")))
    assert synced.returncode == 0, synced.stderr
    again = host.packsync("materialize", str(written), "--store", store,
                          **with_index(index, tmp_path, "host-uv-cache"))
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == made.stdout.strip()  # the same environment, found ready
    outputs += [again.stdout, again.stderr]

    leaks = files_with_token(tmp_path / "cache", tmp_path / "host-cache",
                             tmp_path / "bare-cache", tmp_path / "out", shared.workdir)
    assert leaks == []
    assert not [o for o in outputs if TOKEN in o]


MAKE_COMMAND = """
import json, os
from packsync.launch.worker_command import worker_command

made = worker_command(store=os.environ["SHARED"], install="index")
print(repr(made))
print(json.dumps({"argv": list(made.argv),
                  "indexes": [[i.name, i.url, i.url_variable] for i in made.indexes]}))
"""
WORKER_PROBE = f"import os, {MODULE}; print({MODULE}.MESSAGE); " \
               "print(sorted(k for k, v in os.environ.items() if " + repr(TOKEN) + " in v))"


def test_worker_command_jobs_take_the_token_from_their_own_environment(
        client: ClientEnv, index: TokenIndex, tmp_path: Path):
    shared = tmp_path / "shared"
    made = dataclasses.replace(client, cache=tmp_path / "cache").run(
        MAKE_COMMAND, SHARED=str(shared), **with_index(index, tmp_path))
    command = json.loads(made.stdout.strip().splitlines()[-1])
    argv = command["argv"]
    assert argv[argv.index("--index") + 1] == f"corp={index.url.replace(TOKEN, PLACEHOLDER)}"
    assert command["indexes"] == [["corp", index.url.replace(TOKEN, PLACEHOLDER),
                                   "UV_INDEX_CORP_URL"]]
    cli = dataclasses.replace(client, cache=tmp_path / "cache").packsync(
        "worker-command", "--store", str(shared), "--json", "--install", "index",
        **with_index(index, tmp_path))
    assert cli.returncode == 0, cli.stderr
    shown = json.loads(cli.stdout)
    assert shown[shown.index("--index") + 1] == argv[argv.index("--index") + 1]
    told = " ".join(cli.stderr.split())
    assert "read the token of" in told and "from UV_INDEX_CORP_URL" in told
    assert "UV_INDEX_CORP_USERNAME" not in told  # no credentials were needed here

    def job(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*argv, "-c", WORKER_PROBE], capture_output=True, text=True, timeout=300,
            env=hermetic_env(PACKSYNC_CACHE_DIR=str(tmp_path / "worker-cache"),
                             UV_CACHE_DIR=str(tmp_path / "worker-uv"), **extra))

    refused = job()
    assert refused.returncode == 2
    assert "set UV_INDEX_CORP_URL to the index's full URL" in " ".join(refused.stderr.split())
    wrong = job(UV_INDEX_CORP_URL="https://elsewhere.example/simple/")
    assert wrong.returncode == 2 and "is not a URL of the index corp" in wrong.stderr
    worked = job(UV_INDEX_CORP_URL=index.url)
    assert worked.returncode == 0, worked.stderr
    assert worked.stdout.splitlines() == [MESSAGE, "[]"]  # the worker inherits no token
    leaks = files_with_token(shared, tmp_path / "worker-cache", tmp_path / "cache")
    assert leaks == []
    for text in (made.stdout, made.stderr, cli.stdout, cli.stderr, refused.stderr, wrong.stderr,
                 worked.stderr):
        assert TOKEN not in text

