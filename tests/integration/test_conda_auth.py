"""Private conda channels reached with the credentials the user's conda tools keep.

Two channels on one loopback server: one behind HTTP basic auth (``localhost``), one
behind a conda token in the path (``127.0.0.1``). The client's prefix was made by rattler
with the credentials in rattler's own auth file, so its records name the plain channel
URLs (as mamba's and pixi's do); packsync finds the credentials in a mamba auth file under
HOME only, syncs the environment to a worker, and no password or token reaches a file it
wrote or anything it printed. Without the file, the lock fails naming the channel.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import http.server
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import rattler
from rattler.networking import AuthenticationMiddleware, Client

from tests.support.conda_channel import WORKER_TASK, build_channel
from tests.support.servers import serve_http
from tests.support.venvs import REPO, UV, hermetic_env, uv_install

pytestmark = pytest.mark.integration

USER, PASSWORD = "condauser", "pw-7c1e9b2d44a0f6"
TOKEN = "ctk-5d8e0a3f9b7c2146"
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
SECRETS = (PASSWORD, TOKEN, BASIC)
SPECS = ["python", "libgreet", "dask-core", "msgpack-python"]


class _PrivateChannels(http.server.SimpleHTTPRequestHandler):
    """``/basic/...`` for HTTP basic auth, ``/t/<TOKEN>/tok/...`` for the token; 401/403
    otherwise. Every request's path and Authorization header are kept in ``seen``."""

    seen: list[tuple[str, str]] = []

    def do_GET(self) -> None:
        authorization = self.headers.get("Authorization") or ""
        self.seen.append((self.path, authorization))
        if self.path.startswith("/basic/"):
            if authorization != f"Basic {BASIC}":
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="conda"')
                self.end_headers()
                return
        elif self.path.startswith(f"/t/{TOKEN}/tok/"):
            self.path = self.path[len(f"/t/{TOKEN}"):]
        else:
            self.send_error(403)
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


def _split(full: Path, root: Path) -> None:
    """``basic``: every package but libgreet; ``tok``: libgreet alone. Both indexed."""
    for name in ("basic", "tok"):
        for sub in ("linux-64", "noarch"):
            (root / name / sub).mkdir(parents=True)
    for package in full.glob("*/*.conda"):
        into = "tok" if package.name.startswith("libgreet-") else "basic"
        shutil.copy2(package, root / into / package.parent.name / package.name)
    for name in ("basic", "tok"):
        asyncio.run(rattler.index.index_fs(root / name))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The plain URLs of the basic-auth and the token channel."""
    root = tmp_path_factory.mktemp("private-conda")
    _split(build_channel(root / "full"), root / "served")
    handler = functools.partial(_PrivateChannels, directory=str(root / "served"))
    with serve_http(handler) as base:
        port = base.rsplit(":", 1)[1]
        yield f"http://localhost:{port}/basic", f"http://127.0.0.1:{port}/tok"


def _auth_file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "localhost": {"BasicHTTP": {"username": USER, "password": PASSWORD}},
        "127.0.0.1": {"CondaToken": TOKEN},
    }))
    path.chmod(0o600)
    return path


def _create_prefix(prefix: Path, channels: list[str], auth: Path, cache: Path) -> None:
    """The prefix as rattler makes it from private channels: credentials from its own
    auth file, records naming the plain channel URLs."""
    os.environ["RATTLER_AUTH_FILE"] = str(auth)
    try:
        client = Client([AuthenticationMiddleware()])

        async def make() -> None:
            gateway = rattler.Gateway(cache_dir=str(cache / "repodata"), client=client)
            records = await rattler.solve(channels, SPECS, gateway=gateway,
                                          platforms=["linux-64", "noarch"])
            requested = [rattler.MatchSpec(s)._match_spec for s in SPECS]
            await rattler.install(records, prefix, cache_dir=cache / "pkgs",
                                  show_progress=False, requested_specs=requested,
                                  client=client)
        asyncio.run(make())
    finally:
        del os.environ["RATTLER_AUTH_FILE"]


@pytest.fixture
def private_client(tmp_path: Path, served: tuple[str, str]):  # type: ignore[no-untyped-def]
    prefix = tmp_path / "client-env"
    _create_prefix(prefix, list(served), _auth_file(tmp_path / "rattler" / "auth.json"),
                   tmp_path / "rattler-cache")
    uv_install(prefix / "bin" / "python", str(REPO), "py-rattler")
    workdir = tmp_path / "work"
    workdir.mkdir()
    return prefix, workdir


def _run(prefix: Path, workdir: Path, home: Path, cache: Path, code: str
         ) -> subprocess.CompletedProcess[str]:
    script = workdir / "client.py"
    script.write_text(code)
    uv_cache = subprocess.run([UV, "cache", "dir"], capture_output=True, text=True,
                              check=True).stdout.strip()
    return subprocess.run(
        [str(prefix / "bin" / "python"), str(script)], cwd=workdir, capture_output=True,
        text=True, timeout=600,
        env=hermetic_env(PACKSYNC_CACHE_DIR=str(cache), HOME=str(home), UV_CACHE_DIR=uv_cache))


def _files_with_secrets(*roots: Path) -> list[str]:
    found = []
    for root in roots:
        for directory, _, names in os.walk(root):
            for name in names:
                path = Path(directory, name)
                if path.is_symlink() or not path.is_file():
                    continue
                data = path.read_bytes()
                found += [f"{path}: {s}" for s in SECRETS if s.encode() in data]
    return found


SYNC = WORKER_TASK + """
import json
import packsync
from packsync.pipeline import lock_environment

locked = lock_environment()
with packsync.Cluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster, \\
        cluster.get_client() as client:
    result = client.submit(use_libgreet, pure=False).result()
    env = str(cluster.prepared.environment.path)
print(json.dumps({"lock": locked.lock.text, "plan": locked.plan.to_dict(), "env": env,
                  "result": result}))
"""


def test_private_channels_with_credentials_from_the_mamba_auth_file(  # type: ignore[no-untyped-def]
        private_client, served, tmp_path) -> None:
    prefix, workdir = private_client
    basic, tok = served
    home = tmp_path / "home"
    _auth_file(home / ".mamba" / "auth" / "authentication.json")
    cache = tmp_path / "cache"
    _PrivateChannels.seen.clear()
    result = _run(prefix, workdir, home, cache, SYNC)
    assert result.returncode == 0, result.stdout + result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])

    # the worker runs in the environment made from both private channels
    assert out["result"]["answer"] == 31 and out["result"]["greet"] == "greet 43"
    assert out["result"]["prefix"] == out["env"]
    assert any(n.startswith("libgreet-2.4.1-") for n in out["result"]["conda_meta"])
    lock = out["lock"]
    assert f'url = "{tok}/linux-64/libgreet-2.4.1-h1a2b3c_0.conda"' in lock
    assert f'channel = "{basic}"' in lock

    # each credential went to its own channel only, the token in the path
    sent = {auth for path, auth in _PrivateChannels.seen if path.startswith("/basic/")}
    assert sent == {f"Basic {BASIC}"}
    assert all(not auth for path, auth in _PrivateChannels.seen if not path.startswith("/basic/"))
    assert any(path.startswith(f"/t/{TOKEN}/tok/") for path, _ in _PrivateChannels.seen)

    # no password or token in anything packsync wrote or printed
    assert not any(s in result.stdout + result.stderr for s in SECRETS)
    assert _files_with_secrets(cache, workdir) == []
    home_files = [f for f in _files_with_secrets(home) if "authentication.json" not in f]
    assert home_files == []


def test_a_channel_without_credentials_names_it_and_the_fix(  # type: ignore[no-untyped-def]
        private_client, served, tmp_path) -> None:
    prefix, workdir = private_client
    home = tmp_path / "empty-home"
    home.mkdir()
    code = """
import packsync
from packsync.errors import LockError
from packsync.pipeline import lock_environment
try:
    lock_environment()
except LockError as error:
    print("LOCKERROR", error.message, "|", error.hint)
"""
    result = _run(prefix, workdir, home, tmp_path / "cache", code)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "LOCKERROR" in result.stdout, result.stdout + result.stderr
    message = result.stdout.split("LOCKERROR", 1)[1]
    named = message.split(" refused this machine")[0]
    assert named.endswith(served), message  # the channel, by its plain URL
    assert "none were found" in message and "authentication.json" in message
