"""``packsync lock -o DIR/pylock.toml`` writes a directory that plain uv installs anywhere:
the lock and the wheels of local code beside it, nothing that needs packsync."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from tests.support.projects import make_project
from tests.support.venvs import UV, ClientEnv, hermetic_env, uv_venv

pytestmark = pytest.mark.integration

IMPORT_ALL = """
import importlib, importlib.metadata as md, json, sys
names = {}
for dist in md.distributions():
    tops = {str(f).split("/")[0] for f in dist.files or ()}
    mods = sorted(t.removesuffix(".py") for t in tops
                  if not t.endswith((".dist-info", ".pth", ".data", "..")) and t.isidentifier()
                  or t.endswith(".py") and t.removesuffix(".py").isidentifier())
    names[dist.metadata["Name"]] = mods
failed = {}
for dist, mods in names.items():
    for mod in mods:
        try:
            importlib.import_module(mod)
        except Exception as error:
            failed[mod] = repr(error)
print(json.dumps({"dists": names, "failed": failed, "prefix": sys.prefix}))
"""


def uv_alone(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([UV, *args], cwd=cwd, env=hermetic_env(), capture_output=True,
                          text=True, timeout=300)


def test_the_lock_directory_installs_with_uv_alone(client_env: ClientEnv, tmp_path: Path):
    project = make_project(tmp_path / "exportlib", "exportlib", "def answer():\n    return 42\n",
                           version="0.3.0")
    client_env.install("-e", str(project))
    result = client_env.packsync("lock", "-o", "out/new/pylock.toml")
    assert result.returncode == 0, result.stderr
    written = client_env.workdir / "out" / "new"
    wheels = sorted(p.name for p in (written / "wheels").iterdir())
    assert any(w.startswith("exportlib-0.3.0-") for w in wheels), wheels
    assert any(w.startswith("packsync-") for w in wheels), wheels  # installed from a directory
    assert "uv pip sync" in result.stderr

    # the directory, moved anywhere, installs with uv alone; its packages all import
    moved = shutil.move(str(written), str(tmp_path / "elsewhere"))
    shutil.rmtree(project)  # the local package comes from its wheel, not from its source
    locked = {canonicalize_name(line.split('"')[1]) for line in (Path(moved) / "pylock.toml").read_text().splitlines()
              if line.startswith("name = ")}
    for command in (["pip", "sync"], ["pip", "install", "-r"]):
        venv = tmp_path / f"venv-{command[1]}"
        python = uv_venv(venv)
        installed = uv_alone(*command, "pylock.toml", "--python", str(python),
                             "--preview-features", "pylock", cwd=Path(moved))
        assert installed.returncode == 0, installed.stderr
        check = subprocess.run([str(python), "-c", IMPORT_ALL], capture_output=True, text=True,
                               env=hermetic_env(), cwd=tmp_path, timeout=300)
        assert check.returncode == 0, check.stderr
        report = json.loads(check.stdout)
        assert report["failed"] == {}
        assert {canonicalize_name(n) for n in report["dists"]} >= locked
        assert report["dists"]["exportlib"] == ["exportlib"]
        answer = subprocess.run([str(python), "-c", "import exportlib; print(exportlib.answer())"],
                                capture_output=True, text=True, env=hermetic_env(), cwd=tmp_path)
        assert answer.stdout.strip() == "42"


def test_lock_output_errors_are_named_never_raw(client_env: ClientEnv, tmp_path: Path):
    blocker = client_env.workdir / "a-file"
    blocker.write_text("")
    result = client_env.packsync("lock", "-o", str(blocker / "sub" / "pylock.toml"))
    assert result.returncode == 2, result.stderr
    assert "cannot write the lock to" in result.stderr and "Traceback" not in result.stderr
    for option, what in (("--cache-dir", "cache directory"), ("--store", "artifact store")):
        result = client_env.packsync("lock", option, "a-file/sub", "-o", "elsewhere/")
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert f"as the packsync {what}" in result.stderr or f"as the {what}" in result.stderr
    planned = client_env.packsync("plan", "--cache-dir", "a-file/sub")
    assert planned.returncode == 2 and "Traceback" not in planned.stderr, planned.stderr
    relative = client_env.packsync("lock", "--store", "a-store", "-o", "with-store/")
    assert relative.returncode == 0, relative.stderr  # a relative store directory works
    # a directory, existing or not, gets a pylock.toml
    for directory in ("new-dir/", "new-dir"):
        result = client_env.packsync("lock", "-o", directory)
        assert result.returncode == 0, result.stderr
        assert (client_env.workdir / "new-dir" / "pylock.toml").is_file()
    missing = client_env.packsync("materialize", "no/such/pylock.toml")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    snapshot = client_env.packsync("plan", "--snapshot", "no/such/snapshot.json")
    assert snapshot.returncode == 2 and "Traceback" not in snapshot.stderr
