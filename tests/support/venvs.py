"""Real virtual environments made with uv, hermetic from this machine's pip configuration:
a client venv holding packsync from this checkout, each with a packsync cache of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uv import find_uv_bin

REPO = Path(__file__).resolve().parents[2]
UV = os.fsdecode(find_uv_bin())
BASE_PYTHON = os.path.realpath(getattr(sys, "_base_executable", sys.executable))


def hermetic_env(**extra: str) -> dict[str, str]:
    """This process's environment without pip/uv index settings, the machine's pip config, an
    active venv, packsync settings or a Python search path, then ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_", "VIRTUAL_ENV", "PACKSYNC_"))
           and k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env.update(extra)
    return env


def uv_venv(path: Path, *, system_site_packages: bool = False) -> Path:
    """A bare venv of the base interpreter at ``path``; its ``python``."""
    inherit = ["--system-site-packages"] if system_site_packages else []
    subprocess.run([UV, "venv", "--quiet", *inherit, "--python", BASE_PYTHON, str(path)],
                   check=True, env=hermetic_env())
    return path / "bin" / "python"


def uv_install(python: Path | str, *args: str, compile_bytecode: bool = False,
               capture: bool = False) -> None:
    """``uv pip install args`` into the environment of ``python``; byte-compiled if asked (a
    fair baseline for timings), its output kept from the test log if ``capture``."""
    compile_ = ["--compile-bytecode"] if compile_bytecode else []
    subprocess.run([UV, "pip", "install", "--quiet", *compile_, "--python", str(python), *args],
                   check=True, env=hermetic_env(), capture_output=capture)


@dataclass
class ClientEnv:
    """A client virtual environment with packsync installed, and a cache of its own."""

    path: Path
    cache: Path
    workdir: Path

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def env(self, **extra: str) -> dict[str, str]:
        return hermetic_env(PACKSYNC_CACHE_DIR=str(self.cache), **extra)

    def install(self, *args: str) -> None:
        uv_install(self.python, *args)

    def uninstall(self, *names: str) -> None:
        subprocess.run([UV, "pip", "uninstall", "--quiet", "--python", str(self.python), *names],
                       check=True, env=hermetic_env())

    def run(self, code: str, *, check: bool = True, timeout: float = 300,
            **extra: str) -> subprocess.CompletedProcess[str]:
        """Run ``code`` with the client interpreter in the working directory."""
        script = self.workdir / "_script.py"
        script.write_text(textwrap.dedent(code))
        result = subprocess.run([str(self.python), str(script)], cwd=self.workdir,
                                env=self.env(**extra), capture_output=True, text=True,
                                timeout=timeout)
        script.unlink()
        if check and result.returncode != 0:
            raise AssertionError(f"script failed:\n{result.stdout}\n{result.stderr}")
        return result

    def packsync(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.path / "bin" / "packsync"), *args], cwd=self.workdir,
                              env=self.env(**extra), capture_output=True, text=True, timeout=300)

    def json_run(self, code: str, *, timeout: float = 300, **extra: str) -> Any:
        """Run ``code``, which prints one JSON document as its last line."""
        return json.loads(self.run(code, timeout=timeout, **extra).stdout.strip().splitlines()[-1])


def make_client(root: Path, *install: str, compile_bytecode: bool = False) -> ClientEnv:
    """A fresh venv ``root/client`` holding packsync (from this checkout) and ``install``, its
    working directory ``root/work`` and its packsync cache ``root/cache``."""
    venv = root / "client"
    uv_venv(venv)
    workdir = root / "work"
    workdir.mkdir()
    env = ClientEnv(path=venv, cache=root / "cache", workdir=workdir)
    uv_install(env.python, str(REPO), *install, compile_bytecode=compile_bytecode)
    return env


def run_job(argv: list[str], code: str, root: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    """A worker command's job running ``code`` with the job's own, clean caches under
    ``root`` (no wheel cached, no netrc): only ``extra`` gives it credentials."""
    return subprocess.run(
        [*argv, "-c", code], capture_output=True, text=True, timeout=300,
        env=hermetic_env(PACKSYNC_CACHE_DIR=str(root / "worker-cache"),
                         UV_CACHE_DIR=str(root / "worker-uv"), NETRC=str(root / "none"),
                         **extra))
