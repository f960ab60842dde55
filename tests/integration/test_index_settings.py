"""uv's per-index settings reach every uv packsync runs: ``ignore-error-codes`` lets the
resolve go on past an index that answers 403, ``authenticate = "always"`` refuses an index
without credentials before uv asks it anything, and passes them when they are found (to
the resolve and to the install), never into a file that stays. And ``plan --no-resolve``
says what it knows of the same-platform check without asking an index."""

from __future__ import annotations

import functools
import json
import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from packsync.errors import LockError, ScanError
from packsync.hostside import uvconfig
from packsync.lock.resolve import lock
from packsync.materialize.environments import materialize
from packsync.plan.rules import plan
from packsync.scan.indexes import discover
from packsync.store import open_store
from tests.integration.test_resolution import EXACT_PROBE, linux_snapshot, packsync_plan
from tests.support.private_index import MESSAGE, MODULE, PACKAGE, PrivateIndex, serve_index
from tests.support.projects import make_wheel, write
from tests.support.servers import serve_http
from tests.support.simple_index import _Quiet, lay_out, serve_simple_index
from tests.support.venvs import make_client, run_job

pytestmark = pytest.mark.integration

PROBE = "packsync-guarded-probe"
USER = "alice"
PASSWORD = "pw-" + secrets.token_hex(12)


class _Guarded(_Quiet):
    """Serves the laid-out indexes, but ``/guarded/<PROBE>/`` answers 403 (as an index that
    forbids what it does not hold, like PyTorch's), counting those requests."""

    refused: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.startswith(f"/guarded/{PROBE}"):
            self.refused.append(self.path)
            self.send_response(403)
            self.end_headers()
            return
        super().do_GET()


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    root = tmp_path / "served"
    lay_out(root, [make_wheel(tmp_path / "g", "unrelated-package", "1.0.0")], "guarded")
    lay_out(root, [make_wheel(tmp_path / "m", PROBE, "1.0.0")], "mirror")
    refused: list[str] = []
    handler = type("Guarded", (_Guarded,), {"refused": refused})
    with serve_http(functools.partial(handler, directory=str(root))) as url:
        yield url, refused


def project(root: Path, indexes: str) -> Path:
    return write(root / "pyproject.toml", '[project]\nname = "app"\nversion = "0.1.0"\n'
                 + indexes).parent


def hermetic(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"HOME": str(tmp_path), "PIP_CONFIG_FILE": os.devnull,
            "NETRC": str(tmp_path / "no-netrc"), **extra}


def test_ignore_error_codes_lets_uv_go_on_past_an_index_that_answers_403(guarded, tmp_path):
    """uv's own strategy, first-index: a 403 stops the search unless the index says not to."""
    url, refused = guarded
    decided = plan(linux_snapshot("1.0.0", probe=PROBE))
    store = open_store(str(tmp_path / "store"))

    def resolved(codes: str, cache: str) -> str:
        root = project(tmp_path / cache, f"""\
            [tool.uv]
            index-strategy = "first-index"
            [[tool.uv.index]]
            name = "guarded"
            url = "{url}/guarded/"
            {codes}
            [[tool.uv.index]]
            name = "mirror"
            url = "{url}/mirror/"
            """)
        settings = discover(hermetic(tmp_path), prefix=str(tmp_path), cwd=root)
        return lock(decided, {}, store=store, settings=settings, cache=tmp_path / cache).text

    text = resolved("ignore-error-codes = [403]", "c1")
    assert f"{url}/files/mirror/packsync_guarded_probe-1.0.0" in text
    assert refused, "uv never asked the guarded index"

    refused.clear()
    with pytest.raises(LockError) as caught:
        resolved("", "c2")
    assert refused
    assert "403" in caught.value.message and f"{url}/guarded/" in caught.value.message


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateIndex]:
    root = tmp_path_factory.mktemp("private")
    with serve_index(root, {USER: PASSWORD}) as served:
        yield served


def asked_for_the_package(index_root: Path) -> bool:
    return f"/simple/{PACKAGE}/" in (index_root / "server.log").read_text()


def no_secret_in(*places: Path) -> None:
    for place in places:
        for path in place.rglob("*"):
            if path.is_file() and not path.is_symlink():
                assert PASSWORD.encode() not in path.read_bytes(), f"the password in {path}"


def test_authenticate_always_without_credentials_is_refused_before_uv_runs(
        private: PrivateIndex, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    root = project(tmp_path / "app", f"""\
        [[tool.uv.index]]
        name = "private"
        url = "{private.url}"
        authenticate = "always"
        """)
    settings = discover(hermetic(tmp_path), prefix=str(tmp_path), cwd=root)
    log = Path(private.process.args[-1]).parent / "server.log"  # type: ignore[index]
    before = log.read_text()
    with pytest.raises(ScanError) as caught:
        lock(plan(linux_snapshot("1.0.0", probe=PACKAGE)), {},
             store=open_store(str(tmp_path / "store")), settings=settings,
             cache=tmp_path / "cache")
    error = caught.value
    assert "the index private" in error.message and private.url in error.message
    assert 'authenticate = "always"' in error.message and str(root) in error.message
    assert f"machine {private.host} login USER" in error.hint
    assert "UV_INDEX_PRIVATE_USERNAME" in error.hint
    assert log.read_text() == before, "uv asked the index anyway"


def test_authenticate_always_with_credentials_resolves_and_installs(
        private: PrivateIndex, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine {private.host} login {USER} password {PASSWORD}\n")
    root = project(tmp_path / "app", f"""\
        [[tool.uv.index]]
        name = "private"
        url = "{private.url}"
        authenticate = "always"
        cache-control = {{ api = "no-cache" }}
        """)
    settings = discover(hermetic(tmp_path, NETRC=str(netrc)), prefix=str(tmp_path), cwd=root)
    store = open_store(str(tmp_path / "store"))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))  # where uv's file goes, for ours()

    def ours() -> list[Path]:
        return list(tmp_path.glob(f"{uvconfig.DIRECTORY_PREFIX}*"))

    result = lock(plan(linux_snapshot("1.0.0", probe=PACKAGE)), {}, store=store,
                  settings=settings, cache=tmp_path / "cache")
    assert result.versions[PACKAGE] == "1.0.0"
    assert PASSWORD not in result.text

    # the install downloads the private wheel anew (a uv cache of its own), with them
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    environment = materialize(result, cache=tmp_path / "cache", store=store,
                              uv_env=settings.uv_environment())
    python = environment.path / "bin" / "python"
    shown = subprocess.run([str(python), "-c", f"import {MODULE}; print({MODULE}.MESSAGE)"],
                           capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == MESSAGE
    no_secret_in(tmp_path / "cache", tmp_path / "store")
    assert ours() == [], "a configuration file outlived its uv command"


def test_plan_without_resolving_says_what_it_can_of_the_same_platform_refusal(tmp_path):
    """--no-resolve asks no index: it says the exact versions were not checked, and once a
    resolve of the same plan is in the cache, shows its refusal, the index gone."""
    wheels = [make_wheel(tmp_path / "built", EXACT_PROBE, v) for v in ("1.2.0", "1.2.3")]
    cache = str(tmp_path / "cache")
    with serve_simple_index(tmp_path / "index", wheels) as url:
        env = {"UV_INDEX": url, "HOME": str(tmp_path), "PIP_CONFIG_FILE": os.devnull}
        indexes = discover(env, prefix=str(tmp_path)).redacted()
        snapshot = tmp_path / "linux.json"
        snapshot.write_text(json.dumps(
            linux_snapshot("1.2.5", "linux-x86_64", EXACT_PROBE, indexes).to_dict()))
        plan_args = ("--snapshot", str(snapshot), "--cache-dir", cache)

        skipped = packsync_plan(*plan_args, "--no-resolve", UV_INDEX=url)
        assert skipped.returncode == 0, skipped.stderr
        said = " ".join(skipped.stdout.split())
        assert "notice: not checked (--no-resolve)" in said
        assert url in said and EXACT_PROBE in said and "critical problem" in said
        assert "without --no-resolve to check them" in said

        refused = packsync_plan(*plan_args, UV_INDEX=url)
        assert refused.returncode == 2, refused.stderr
    again = packsync_plan(*plan_args, "--no-resolve", UV_INDEX=url)  # the index is gone
    assert again.returncode == 2, again.stderr
    message = " ".join(again.stderr.split())
    for text in ("critical", f"{EXACT_PROBE} 1.2.5", "same platform", url,
                 "relax_same_platform"):
        assert text in message, text
    assert "not checked" not in again.stdout

    # a plan for another platform relaxes as a rule: nothing to say
    mac = packsync_plan("--snapshot", str(snapshot), "--no-resolve", "--target",
                        "linux-aarch64", UV_INDEX=url)
    assert mac.returncode == 0 and "not checked" not in mac.stdout


JOB_PROBE = f"import {MODULE}; print({MODULE}.MESSAGE)"


def test_worker_command_jobs_get_the_settings_and_authenticate_themselves(tmp_path):
    """In index mode the settings go to the jobs through the store; the job's uv applies
    them (``authenticate = "always"``: no credentials in the job, no request at all)."""
    with serve_index(tmp_path / "index", {USER: PASSWORD}) as index:
        client = make_client(tmp_path)
        index.install_probe(client.python, USER, PASSWORD)
        write(client.workdir / "pyproject.toml", f"""\
            [project]
            name = "app"
            version = "0.1.0"
            [[tool.uv.index]]
            name = "private"
            url = "{index.url}"
            authenticate = "always"
            """)
        credentials = {"UV_INDEX_PRIVATE_USERNAME": USER, "UV_INDEX_PRIVATE_PASSWORD": PASSWORD}
        shared = tmp_path / "shared"
        made = client.packsync("worker-command", "--store", str(shared), "--json",
                               "--install", "index", NETRC=str(tmp_path / "none"),
                               **credentials)
        assert made.returncode == 0, made.stderr
        argv = json.loads(made.stdout)
        assert argv[argv.index("--index") + 1] == f"private={index.url}"
        described = argv[argv.index("--index-options") + 1]
        stored = next(p for p in shared.rglob(described) if p.is_file())
        assert json.loads(stored.read_text()) == [
            {"url": "https://pypi.org/simple", "format": "simple"},
            {"url": index.url, "name": "private", "format": "simple", "authenticate": "always"}]

        def job(**extra: str) -> subprocess.CompletedProcess[str]:
            return run_job(argv, JOB_PROBE, tmp_path, **extra)

        log = tmp_path / "index" / "server.log"
        before = log.read_text()
        refused = job()
        assert refused.returncode != 0
        assert "Missing credentials" in refused.stderr, refused.stderr
        assert (f"{index.host} needs credentials on this machine" in refused.stderr
                and "UV_INDEX_<NAME>_USERNAME" in refused.stderr), refused.stderr
        assert f"/packages/{PACKAGE.replace('-', '_')}" not in log.read_text()[len(before):]
        worked = job(**credentials)
        assert worked.returncode == 0, worked.stderr
        assert worked.stdout.splitlines() == [MESSAGE]
        for place in (shared, tmp_path / "worker-cache"):
            no_secret_in(place)
        for text in (made.stdout, made.stderr, refused.stderr, worked.stderr):
            assert PASSWORD not in text
