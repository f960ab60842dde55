"""Which byte code on this machine a new local environment may take, and how it is asked for."""

from __future__ import annotations

import sys
from pathlib import Path

from packsync.materialize.bytecode import Donors, client_sites

TAG = sys.implementation.cache_tag
RUNNING = f"{sys.version_info[0]}.{sys.version_info[1]}.0"


def env_of(path: Path, version: str, implementation: str = "CPython") -> Path:
    path.mkdir(parents=True)
    (path / "pyvenv.cfg").write_text(
        f"home = /usr/bin\nimplementation = {implementation}\nversion_info = {version}\n")
    return path


def site_dir(path: Path, *, compiled: bool) -> Path:
    package = path / "pkg"
    (package / "__pycache__").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    if compiled:
        (package / "__pycache__" / f"__init__.{TAG}.pyc").write_bytes(b"")
    return path


def test_sites_holding_byte_code_of_this_python_serve_an_environment_of_it(tmp_path):
    env = env_of(tmp_path / "env", RUNNING)
    compiled = site_dir(tmp_path / "compiled", compiled=True)
    source_only = site_dir(tmp_path / "source-only", compiled=False)
    candidates = [str(compiled), str(source_only), str(tmp_path / "missing"), str(compiled)]
    assert client_sites(env, candidates) == (compiled,)


def test_another_python_takes_nothing_from_this_one(tmp_path):
    compiled = [str(site_dir(tmp_path / "compiled", compiled=True))]
    other_minor = f"{sys.version_info[0]}.{sys.version_info[1] + 1}.0"
    assert client_sites(env_of(tmp_path / "newer", other_minor), compiled) == ()
    assert client_sites(env_of(tmp_path / "pypy", RUNNING, "PyPy"), compiled) == ()
    (tmp_path / "conda").mkdir()  # no pyvenv.cfg: conda's Python
    assert client_sites(tmp_path / "conda", compiled) == ()


def test_the_environment_itself_is_no_donor_of_its_own(tmp_path):
    env = env_of(tmp_path / "env", RUNNING)
    inside = site_dir(env / "lib" / "site-packages", compiled=True)
    assert client_sites(env, [str(inside)]) == ()


def test_the_cache_s_environment_is_asked_first_then_the_sites():
    donors = Donors(environment=Path("/c/envs/0123456789abcdef"),
                    sites=(Path("/v/site-packages"), Path("/u/site-packages")))
    assert donors.arguments() == ["/c/envs/0123456789abcdef", "--site", "/v/site-packages",
                                  "--site", "/u/site-packages"]
    assert donors.describe() == "environment 0123456789ab and this Python's site-packages"
    assert Donors(sites=(Path("/v"),)).arguments() == ["--site", "/v"]
    assert not Donors() and Donors(sites=(Path("/v"),))
