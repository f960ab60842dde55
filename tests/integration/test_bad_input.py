"""Bad input: clear errors, and nothing half-built ever used."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.projects import make_project
from tests.support.venvs import ClientEnv

pytestmark = pytest.mark.integration


def store_objects(cache: Path) -> list[Path]:
    return [p for p in (cache / "store").rglob("*") if p.is_file()]


def test_failing_local_build_names_the_package_and_leaves_nothing(client_env: ClientEnv, tmp_path):
    project = make_project(tmp_path / "brokenpkg", "brokenpkg", "X = 1\n")
    client_env.install("-e", str(project))
    # the project's build now fails the way a broken compiler step would
    (project / "failing_backend.py").write_text(
        "def build_wheel(*args, **kwargs):\n    raise RuntimeError('compiler exploded')\n"
        "def get_requires_for_build_wheel(*args, **kwargs):\n    return []\n")
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(
        'requires = ["hatchling"]\nbuild-backend = "hatchling.build"',
        'requires = []\nbuild-backend = "failing_backend"\nbackend-path = ["."]'))
    result = client_env.packsync("lock", "-o", "pylock.toml")
    assert result.returncode == 2
    assert "brokenpkg" in result.stderr and str(project) in result.stderr
    assert "last lines of the log" in result.stderr and "compiler exploded" in result.stderr
    assert not (client_env.workdir / "pylock.toml").exists()
    assert not any("brokenpkg" in p.name for p in store_objects(client_env.cache))
    assert not (client_env.cache / "envs").exists()


@pytest.mark.attack("hostile lock")
def test_corrupted_or_foreign_lock_is_refused_without_an_environment(client_env: ClientEnv):
    garbage = client_env.workdir / "pylock.toml"
    garbage.write_bytes(b"\x00\x01 not toml [[[")
    result = client_env.packsync("materialize", str(garbage))
    assert result.returncode == 2 and "pylock.toml" in result.stderr

    foreign = client_env.workdir / "pylock.other.toml"
    foreign.write_text('lock-version = "1.0"\ncreated-by = "someone"\n\n[[packages]]\n'
                       'name = "six"\nversion = "1.16.0"\n'
                       'wheels = [{ url = "https://example.org/six-1.16.0-py2.py3-none-any.whl", '
                       'hashes = { sha256 = "' + "0" * 64 + '" } }]\n')
    result = client_env.packsync("materialize", str(foreign))
    assert result.returncode == 2 and "not written by packsync" in result.stderr
    assert not (client_env.cache / "envs").exists()


def test_interrupted_materialize_is_never_used_and_rebuilds_cleanly(client_env: ClientEnv):
    assert client_env.packsync("lock", "-o", "pylock.toml").returncode == 0
    env = client_env.env()
    proc = subprocess.Popen([str(client_env.path / "bin" / "packsync"), "materialize",
                             "pylock.toml"], cwd=client_env.workdir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    envs = client_env.cache / "envs"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        site = list(envs.glob("*/lib/python*/site-packages/*"))
        if len(site) > 3:
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    half_built = [p for p in envs.iterdir() if p.is_dir()]
    assert half_built and not any((p / ".packsync-ready").exists() for p in half_built)

    result = client_env.packsync("materialize", "pylock.toml")
    assert result.returncode == 0, result.stderr
    python = result.stdout.strip().splitlines()[-1]
    assert Path(python).parent.parent in half_built
    check = subprocess.run([python, "-c", "import dask, distributed, httpx; print('ok')"],
                           capture_output=True, text=True)
    assert check.stdout.strip() == "ok", check.stderr


@pytest.mark.attack("tampered store object")
def test_tampered_store_object_is_never_installed(client_env: ClientEnv, tmp_path):
    project = make_project(tmp_path / "mylib", "mylib", "X = 1\n")
    client_env.install("-e", str(project))
    assert client_env.packsync("lock", "-o", "pylock.toml").returncode == 0
    objects = store_objects(client_env.cache)  # the wheels of mylib and of packsync itself
    for obj in objects:
        obj.write_bytes(b"not the wheel that was built")
    result = client_env.packsync("materialize", "pylock.toml")
    assert result.returncode == 2
    assert "does not match its digest" in result.stderr
    assert any(obj.name in result.stderr for obj in objects)
    assert not any((p / ".packsync-ready").exists() for p in (client_env.cache / "envs").iterdir()
                   if p.is_dir())


def test_plan_options_stop_a_launch_before_anything_starts(client_env: ClientEnv, tmp_path):
    # a conflict pip check would report: the project wants an httpx that is not installed
    project = make_project(tmp_path / "needy", "needy", "X = 1\n")
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(
        'version = "0.1.0"', 'version = "0.1.0"\ndependencies = ["httpx<0.1"]'))
    client_env.install("--no-deps", str(project))
    launch = """
        import packsync
        from packsync.errors import PlanError
        try:
            packsync.Cluster(n_workers=1, {options})
        except PlanError as error:
            print(error.stage, "|", error.package, "|", error)
        else:
            print("launched")
    """
    strict = client_env.run(launch.format(options="strict=True")).stdout
    assert strict.startswith("plan |") and "needy" in strict and "httpx" in strict
    assert "requires httpx<0.1" in strict
    by_config = client_env.run(launch.format(options=""), DASK_PACKSYNC__FAIL_ON="warning").stdout
    assert by_config.startswith("plan |") and "fail_on='warning'" in by_config
    assert not (client_env.cache / "envs").exists()  # nothing was built for either
