"""A conda environment replicated to workers: Python itself, a C library and an executable
with no PyPI equivalent, Python packages shipped as conda packages under other names, and
pip packages on top; the channel sits behind a token that must never reach a file."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.conda_channel import (
    PYTHON_FULL,
    TOKEN,
    WORKER_TASK,
    build_channel,
    create_prefix,
    serve_channel,
)
from tests.support.venvs import REPO, hermetic_env, uv_install

pytestmark = pytest.mark.integration

SPECS = ["python", "libgreet", "dask-core", "msgpack-python", "toolz"]


@pytest.fixture(scope="module")
def channel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_channel(tmp_path_factory.mktemp("conda-channel"))


@pytest.fixture
def conda_client(tmp_path: Path, channel: Path):  # type: ignore[no-untyped-def]
    """A conda prefix made by rattler from the token channel, pip packages on top."""
    with serve_channel(channel) as url:
        prefix = tmp_path / "client-env"
        create_prefix(prefix, url, SPECS, tmp_path / "rattler-cache")
        python = prefix / "bin" / "python"
        # packsync[conda] and what Dask needs besides conda's dask-core; toolz replaced over conda's
        uv_install(python, str(REPO), "py-rattler", "toolz==1.0.0")
        workdir = tmp_path / "work"
        workdir.mkdir()
        yield prefix, workdir, tmp_path / "cache", url


def _run(prefix: Path, workdir: Path, cache: Path, code: str) -> dict:  # type: ignore[type-arg]
    script = workdir / "client.py"
    script.write_text(code)
    result = subprocess.run([str(prefix / "bin" / "python"), str(script)], cwd=workdir,
                            env=hermetic_env(PACKSYNC_CACHE_DIR=str(cache)),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert TOKEN not in result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _files_with(root: Path, secret: str) -> list[str]:
    found = []
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory, name)
            if path.is_symlink() or not path.is_file():
                continue
            if secret.encode() in path.read_bytes():
                found.append(str(path))
    return found


def test_conda_environment_with_a_native_library_reaches_the_workers(conda_client) -> None:  # type: ignore[no-untyped-def]
    prefix, workdir, cache, url = conda_client
    code = WORKER_TASK + """
import json
import packsync
from packsync.pipeline import lock_environment

snapshot = packsync.scan()
kinds = {d.key: [d.source.kind, getattr(d.source, "package", ""), d.installer]
         for d in snapshot.dists}
locked = lock_environment(snapshot=snapshot)
with packsync.Cluster(n_workers=1, threads_per_worker=1) as cluster, \\
        cluster.get_client() as client:
    result = client.submit(use_libgreet, pure=False).result()
    env = cluster.prepared.environment
    digest = cluster.prepared.locked.lock.digest
print(json.dumps({
    "kinds": kinds, "notes": list(snapshot.notes),
    "conda": snapshot.conda.to_dict(),
    "snapshot_json": json.dumps(snapshot.to_dict()),
    "plan": locked.plan.to_dict(),
    "lock": locked.lock.text, "digest": locked.lock.digest, "cluster_digest": digest,
    "env": str(env.path), "result": result,
}))
"""
    out = _run(prefix, workdir, cache, code)

    # scan: conda records reconciled with the pip side, on real records
    kinds = out["kinds"]
    assert kinds["dask"][:2] == ["conda", "dask-core"]
    assert kinds["msgpack"][:2] == ["conda", "msgpack-python"]
    assert kinds["toolz"][0] == "index" and kinds["toolz"][2] == "uv"
    assert kinds["distributed"][0] == "index"
    assert any("toolz 1.0.0" in n and "conda's toolz 1.2.0" in n for n in out["notes"])
    conda = out["conda"]
    assert conda["subdir"] == "linux-64"
    assert conda["channels"] == [url.replace(TOKEN, "***")]
    packages = {p["name"]: p for p in conda["packages"]}
    assert set(SPECS) <= set(packages)
    assert packages["libgreet"]["requested_spec"] == "libgreet"
    assert packages["dask-core"]["python_dists"] == ["dask"]
    assert packages["toolz"]["python_dists"] == []  # pip replaced it
    assert packages["dask-core"]["noarch"] == "python"

    # plan and lock: exact version and build on the same platform; the digest covers both
    conda_plan = {d["name"]: d for d in out["plan"]["conda"]["decisions"]}
    assert conda_plan["libgreet"]["spec"] == "libgreet ==2.4.1 h1a2b3c_0"
    assert conda_plan["libgreet"]["cluster_version"] == "2.4.1"
    actions = {d["name"]: d["action"] for d in out["plan"]["decisions"]}
    assert actions["dask"] == "conda" and actions["toolz"] == "pin"
    lock = out["lock"]
    assert "[tool.packsync.conda]" in lock
    assert f'name = "python"\nversion = "{PYTHON_FULL}"' in lock
    assert "libgreet-2.4.1-h1a2b3c_0.conda" in lock and 'sha256 = "' in lock
    assert 'name = "dask"' not in lock.split("[tool.packsync")[0]  # conda provides it
    assert out["cluster_digest"] == out["digest"]

    # the worker ran in the conda-built environment, with conda's own Python
    result = out["result"]
    assert result["answer"] == 31 and result["greet"] == "greet 43"
    assert result["prefix"] == out["env"] and Path(out["env"]).parent == cache / "envs"
    assert any(n.startswith(f"python-{PYTHON_FULL}-") for n in result["conda_meta"])
    assert any(n.startswith("libgreet-2.4.1-") for n in result["conda_meta"])
    assert result["msgpack"].startswith(out["env"])
    binary = Path(out["env"], "bin", "python3.11")
    assert binary.exists() and not binary.is_symlink()
    assert (cache / "conda-pkgs").is_dir()  # the package cache every environment shares

    # no channel token in anything packsync produced
    assert TOKEN not in out["snapshot_json"] + lock
    assert _files_with(cache, TOKEN) == []
    assert _files_with(workdir, TOKEN) == []


def test_pip_part_and_conda_part_lock_to_one_stable_digest(conda_client) -> None:  # type: ignore[no-untyped-def]
    prefix, workdir, cache, _ = conda_client
    code = """
import json
from packsync.lock.lockfile import Lock
from packsync.pipeline import lock_environment, prepare_local

first = lock_environment()
again = lock_environment()
env = prepare_local(again).environment
reparsed = Lock.from_text(first.lock.text)
print(json.dumps({"same": first.lock.digest == again.lock.digest,
                  "conda": [p.name for p in reparsed.conda.packages],
                  "python": reparsed.conda.python, "built": not env.cache_hit,
                  "hit": prepare_local(again).environment.cache_hit}))
"""
    out = _run(prefix, workdir, cache, code)
    assert out["same"] and out["built"] and out["hit"]
    assert out["conda"] == sorted(SPECS) and out["python"] == PYTHON_FULL


def test_a_conda_environment_reaches_an_ssh_host_whole(conda_client, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.support import sshd

    if sshd.available() is not None:
        pytest.skip(str(sshd.available()))
    prefix, workdir, cache, _ = conda_client
    key = sshd.client_key(tmp_path / "key")
    host = sshd.start_host("condahost", tmp_path / "hosts", key, (str(prefix), str(cache)))
    try:
        code = WORKER_TASK + f"""
import json, packsync
with packsync.Cluster(hosts=[{host.spec(python=str(sshd.PYENV) + '/versions/' + PYTHON_FULL + '/bin/python3')!r}],
                      threads_per_worker=1, dashboard_address=None) as cluster, \\
        cluster.get_client() as client:
    result = client.submit(use_libgreet, pure=False).result()
print(json.dumps({{"result": result}}))
"""
        result = _run(prefix, workdir, cache, code)["result"]
        assert result["answer"] == 31 and result["greet"] == "greet 43"  # its native library
        assert result["prefix"].startswith("/root/.cache/packsync/envs/")  # the host's cache
        assert any(n.startswith(f"python-{PYTHON_FULL}-") for n in result["conda_meta"])
        assert result["python"].startswith(result["prefix"])  # conda's Python, not the host's
        assert _files_with(host.root, TOKEN) == []
        assert host.wait_no_processes() == {}
    finally:
        host.stop()
