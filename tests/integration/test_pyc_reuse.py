"""A new environment after one local edit reuses the last one's byte code, and is as valid.

Validity is what the import system reports (``python -v``): each ``.pyc`` it loads
``matches`` its source, none is stale, and tracebacks name the new environment's files.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.projects import make_project
from tests.support.venvs import ClientEnv, hermetic_env

pytestmark = pytest.mark.integration

SUB = "def boom():\n    raise ValueError('boom')\n"


def lock_and_materialize(client_env: ClientEnv, lock: str) -> Path:
    assert client_env.packsync("lock", "-o", lock).returncode == 0
    result = client_env.packsync("materialize", lock)
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip().splitlines()[-1]).parent.parent


def site(env: Path) -> Path:
    return next(env.glob("lib/python*/site-packages"))


def pyc(path: Path) -> Path:
    return path.parent / "__pycache__" / f"{path.stem}.{site_tag(path)}.pyc"


def site_tag(path: Path) -> str:
    version = next(p for p in path.parents if p.name.startswith("python3")).name[len("python"):]
    return "cpython-" + version.replace(".", "")


def run(env: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(env / "bin" / "python"), *args], capture_output=True, text=True,
                          env=hermetic_env(PYTHONDONTWRITEBYTECODE="1"), timeout=120)


def test_an_edit_reuses_the_byte_code_of_every_unchanged_file(client_env: ClientEnv, tmp_path):
    project = make_project(tmp_path / "mylib", "mylib", "VALUE = 0\n")
    (project / "src" / "mylib" / "sub.py").write_text(SUB)
    client_env.install("-e", str(project))
    first = lock_and_materialize(client_env, "first.toml")
    (project / "src" / "mylib" / "__init__.py").write_text("VALUE = 1\n")
    second = lock_and_materialize(client_env, "second.toml")

    assert second != first and (second / ".packsync-ready").is_file()
    sources = sorted(p.relative_to(second) for p in site(second).rglob("*.py"))
    assert sources == sorted(p.relative_to(first) for p in site(first).rglob("*.py"))
    assert all(pyc(second / p).is_file() for p in sources)  # compiled as completely as uv does
    # the path compiled into a .pyc tells where it was compiled: reused, or compiled here
    unchanged = site(second) / "distributed" / "__init__.py"
    assert str(first).encode() in pyc(unchanged).read_bytes()
    edited = site(second) / "mylib" / "__init__.py"
    assert str(first).encode() not in pyc(edited).read_bytes()
    assert str(second).encode() in pyc(edited).read_bytes()

    verbose = run(second, "-v", "-c", "import distributed, mylib.sub; print(mylib.VALUE)")
    assert verbose.returncode == 0, verbose.stderr
    assert verbose.stdout.strip() == "1"
    for source in (unchanged, edited, site(second) / "mylib" / "sub.py"):
        assert f"{pyc(source)} matches {source}" in verbose.stderr
    assert "bytecode is stale" not in verbose.stderr and "bad magic" not in verbose.stderr
    assert str(first) not in verbose.stderr

    boom = run(second, "-c", "import mylib.sub; mylib.sub.boom()")
    assert f'File "{site(second) / "mylib" / "sub.py"}", line 2, in boom' in boom.stderr
    assert "raise ValueError('boom')" in boom.stderr

    again = client_env.packsync("materialize", "first.toml")  # the earlier lock: a cache hit
    assert again.returncode == 0 and "cache hit" in again.stderr, again.stderr
    assert again.stdout.strip().splitlines()[-1] == str(first / "bin" / "python")
