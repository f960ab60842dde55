"""A first local build reuses what this machine has, and builds nothing but the lock.

The lock's index wheels come from uv's cache (hash-pinned, offline) and the byte code
from the client's own site-packages; the environment holds the very files a plain
``uv pip sync`` of the lock into a relocatable venv gives, and when uv's cache lacks a
wheel or holds another file under the lock's name, the lock's URLs are used instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from packsync.lock.lockfile import Lock
from packsync.store import LocalStore
from tests.support.projects import make_project
from tests.support.servers import free_port, wait_ready
from tests.support.venvs import BASE_PYTHON, UV, ClientEnv, hermetic_env, make_client

pytestmark = pytest.mark.integration

LAUNCH = """
import json, logging
import packsync

logging.basicConfig(level=logging.INFO)
with packsync.Cluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
    with cluster.get_client() as client:
        client.wait_for_workers(1)
    verification = cluster.verification
    print(json.dumps({
        "env_path": str(cluster.prepared.environment.path),
        "verified": len(verification.verified),
        "differences": [d.describe() for d in verification.differences],
    }))
"""
_COUNTS = re.compile(r"byte-compiled reusing (?P<donor>[^:]+): \{'reused': (?P<reused>\d+), "
                     r"'compiled': (?P<compiled>\d+)\}")


@pytest.fixture
def compiled_client(tmp_path: Path) -> ClientEnv:
    """A client as most are: installed by uv from PyPI, then byte-compiled."""
    client = make_client(tmp_path, "httpx")
    subprocess.run([str(client.python), "-m", "compileall", "-q", "-j", "0",
                    str(site(client.path))], check=True, env=hermetic_env())
    return client


def site(env: Path) -> Path:
    return next(env.glob("lib/python*/site-packages"))


# what uv records of a local wheel it installs: the wheel's path and mtime, which differ
# between any two installs of the lock
_WHERE_FROM = ("direct_url.json", "uv_cache.json")


def files(env: Path) -> dict[str, str]:
    """Every file and link of an environment but its byte code and packsync's records;
    of the files that record where a local wheel was, only that they are there."""
    found: dict[str, str] = {}
    for path in env.rglob("*"):
        relative = path.relative_to(env)
        if "__pycache__" in relative.parts or relative.parts[0].startswith(".packsync"):
            continue
        if path.is_symlink():
            found[str(relative)] = "-> " + os.readlink(path)
        elif path.name in _WHERE_FROM:
            found[str(relative)] = "present"
        elif path.name == "RECORD":
            lines = [line for line in path.read_text().splitlines()
                     if line.split(",")[0].rsplit("/", 1)[-1] not in _WHERE_FROM]
            found[str(relative)] = "\n".join(lines)
        elif path.is_file():
            found[str(relative)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def plain_install(env: Path, cache: Path, target: Path) -> Path:
    """What uv alone makes of the lock ``env`` was built from, with its local wheels."""
    lock = Lock.from_text((env / ".packsync" / "pylock.toml").read_text())
    record = target.parent / f"{target.name}-lock"
    lock.write(record / "pylock.toml")
    store = LocalStore(cache / "store")
    for wheel in lock.local_wheels:
        store.fetch(wheel.sha256, record / "wheels" / wheel.filename)
    for command in (
        ["venv", "--quiet", "--relocatable", "--no-project", "--python", BASE_PYTHON,
         str(target)],
        ["pip", "sync", "--quiet", "--preview-features", "pylock", "--python",
         str(target / "bin" / "python"), str(record / "pylock.toml")],
    ):
        subprocess.run([UV, *command], check=True, env=hermetic_env(), capture_output=True)
    return target


def counts(log: str) -> tuple[str, int, int]:
    found = _COUNTS.search(log)
    assert found is not None, log
    return found["donor"], int(found["reused"]), int(found["compiled"])


def materialize(client: ClientEnv, lock: str, **extra: str) -> tuple[Path, str]:
    assert client.packsync("lock", "-o", lock, **extra).returncode == 0
    result = client.packsync("-v", "materialize", lock, **extra)
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip().splitlines()[-1]).parent.parent, result.stderr


def test_a_first_launch_takes_uv_s_cached_wheels_and_the_client_s_byte_code(
    compiled_client: ClientEnv, tmp_path: Path
):
    client = compiled_client
    launched = client.run(LAUNCH)
    report = json.loads(launched.stdout.strip().splitlines()[-1])
    env = Path(report["env_path"])
    assert report == {"env_path": str(env), "verified": 1, "differences": []}
    assert "packages installed from uv's cache" in launched.stderr
    donor, reused, compiled = counts(launched.stderr)
    assert donor == "this Python's site-packages"
    assert compiled <= reused // 20, launched.stderr  # the client's own code included

    assert files(env) == files(plain_install(env, client.cache, tmp_path / "plain"))
    sources = list(site(env).rglob("*.py"))
    assert reused + compiled == len(sources)
    assert all(Path(cache_from(p)).is_file() for p in sources)  # compiled as fully as uv does
    linked = site(env) / "distributed" / "client.py"
    assert os.path.samefile(cache_from(linked),
                            cache_from(site(client.path) / linked.relative_to(site(env))))
    verbose = subprocess.run(
        [str(env / "bin" / "python"), "-v", "-c", "import distributed, httpx, packsync"],
        capture_output=True, text=True, env=hermetic_env(PYTHONDONTWRITEBYTECODE="1"),
    )
    assert verbose.returncode == 0, verbose.stderr
    assert f"{cache_from(linked)} matches {linked}" in verbose.stderr
    assert "bytecode is stale" not in verbose.stderr and "bad magic" not in verbose.stderr
    assert str(client.path) not in verbose.stderr  # nothing is imported from the client


def cache_from(source: Path) -> str:
    tag = sys.implementation.cache_tag
    return str(source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc")


def test_wheels_missing_from_uv_s_cache_come_from_the_lock_s_urls(
    compiled_client: ClientEnv, tmp_path: Path
):
    empty = tmp_path / "empty-uv-cache"
    env, log = materialize(compiled_client, "pylock.toml", UV_CACHE_DIR=str(empty))
    assert "not all in uv's cache, they are downloaded" in log
    assert "packages installed from uv's cache" not in log
    assert counts(log)[1] > 0  # the byte code is the client's all the same
    assert files(env) == files(plain_install(env, compiled_client.cache, tmp_path / "plain"))


def probe_wheel(root: Path, value: str) -> Path:
    """A wheel of ``probe-pkg`` 1.0 whose module says ``value``: the file name is the same
    whatever the value, the bytes are not."""
    project = make_project(root / value, "probe-pkg", f"WHICH = {value!r}\n", version="1.0")
    out = root / f"dist-{value}"
    subprocess.run([UV, "build", "--quiet", "--wheel", "--out-dir", str(out), str(project)],
                   check=True, env=hermetic_env(), capture_output=True)
    return next(out.glob("*.whl"))


@pytest.fixture
def open_index(tmp_path: Path):
    """A pypiserver on 127.0.0.1 without authentication, serving ``packages``."""
    packages = tmp_path / "index"
    packages.mkdir()
    port = free_port()
    log = tmp_path / "index.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "pypiserver", "run", "-i", "127.0.0.1", "-p", str(port),
             "-a", ".", "-P", ".", "--disable-fallback", str(packages)],
            stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        wait_ready(server, log, port)
        yield packages, f"http://127.0.0.1:{port}/simple/"
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_only_the_lock_s_own_wheel_is_taken_from_uv_s_cache(
    compiled_client: ClientEnv, open_index: tuple[Path, str], tmp_path: Path
):
    client = compiled_client
    packages, url = open_index
    first, second = probe_wheel(tmp_path, "first"), probe_wheel(tmp_path, "second")
    assert first.name == second.name
    shutil.copy(first, packages / first.name)
    client.install("--extra-index-url", url, "probe-pkg==1.0")
    env, log = materialize(client, "first.toml", PIP_EXTRA_INDEX_URL=url)
    assert "packages installed from uv's cache" in log
    assert (site(env) / "probe_pkg" / "__init__.py").read_text() == "WHICH = 'first'\n"

    # the index now serves other bytes under the same name, and uv's cache holds them
    shutil.copy(second, packages / second.name)
    client.install("--extra-index-url", url, "--reinstall-package", "probe-pkg", "probe-pkg==1.0")
    shutil.rmtree(client.cache / "envs")
    refused = client.packsync("-v", "materialize", "first.toml", PIP_EXTRA_INDEX_URL=url)
    assert refused.returncode != 0, refused.stdout  # the lock's file is nowhere to be had
    assert "not all in uv's cache" in refused.stderr and "probe-pkg" in refused.stderr
    assert not list((client.cache / "envs").glob("*/.packsync-ready"))

    shutil.rmtree(client.cache / "locks")  # resolved again: the lock of the index as it is
    env, log = materialize(client, "second.toml", PIP_EXTRA_INDEX_URL=url)
    assert "packages installed from uv's cache" in log
    assert (site(env) / "probe_pkg" / "__init__.py").read_text() == "WHICH = 'second'\n"
    assert files(env) == files(plain_install(env, client.cache, tmp_path / "plain"))
