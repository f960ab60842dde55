"""A local conda channel of real packages, assembled with py-rattler-build, served over HTTP
behind a channel token (``/t/<token>/``), and conda prefixes created from it with rattler.

No public conda channel is reachable here, so the packages are made from what this
machine has: ``python`` from the local CPython build (its stdlib, binary and libpython,
with the binary's RUNPATH made relative by patchelf so the prefix is self-contained),
``libgreet`` (a C shared library and an executable, compiled here), and Python
distributions repackaged from this interpreter's site-packages under their conda names
(``dask-core``, ``msgpack-python``, ``toolz``).
"""

from __future__ import annotations

import asyncio
import functools
import http.server
import importlib.metadata
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import rattler
from rattler_build import assemble_package

from .servers import serve_http

TOKEN = "tk-9f3c2a7e51d04b8c"
PY_VERSION = sysconfig.get_python_version()  # "3.11"
PYTHON_FULL = ".".join(map(str, sys.version_info[:3]))
_SKIP_STDLIB = {"site-packages", "test", "idlelib", "tkinter", "turtledemo", "ensurepip",
                "__pycache__", "lib2to3"}

GREET_C = """
#include <stdio.h>
int greet_answer(int x) { return 6 * x + 1; }
"""
GREET_MAIN_C = """
#include <stdio.h>
int greet_answer(int x);
int main(void) { printf("greet %d\\n", greet_answer(7)); return 0; }
"""


def _python_package(out: Path, work: Path) -> None:
    """A ``python`` conda package from this machine's CPython build."""
    base = Path(sys.base_prefix)
    stage = work / "python"
    lib = stage / "lib"
    stdlib = lib / f"python{PY_VERSION}"
    shutil.copytree(
        base / "lib" / f"python{PY_VERSION}", stdlib,
        ignore=lambda d, names: [n for n in names if n in _SKIP_STDLIB or n.endswith(".pyc")],
        symlinks=True,
    )
    (stdlib / "site-packages").mkdir()
    (stdlib / "site-packages" / "README.txt").write_text("site-packages\n")
    ldlibrary = sysconfig.get_config_var("INSTSONAME") or ""
    if sysconfig.get_config_var("Py_ENABLE_SHARED") and ldlibrary:
        shutil.copy2(base / "lib" / ldlibrary, lib / ldlibrary)
    (stage / "bin").mkdir()
    binary = stage / "bin" / f"python{PY_VERSION}"
    shutil.copy2(os.path.realpath(sys._base_executable if hasattr(sys, "_base_executable")
                                  else sys.executable), binary)
    patchelf = shutil.which("patchelf") or str(Path(sys.executable).parent / "patchelf")
    subprocess.run([patchelf, "--set-rpath", "$ORIGIN/../lib", str(binary)], check=True)
    for alias in ("python", "python3"):
        (stage / "bin" / alias).symlink_to(f"python{PY_VERSION}")
    assemble_package("python", PYTHON_FULL, "linux-64", "h0_cpython", out / "linux-64",
                     files_dir=stage, compression_level=1, detect_prefix=False)


def _greet_package(out: Path, work: Path) -> None:
    """``libgreet``: a shared library and an executable linked against it, no Python."""
    stage = work / "libgreet"
    (stage / "lib").mkdir(parents=True)
    (stage / "bin").mkdir()
    (work / "greet.c").write_text(GREET_C)
    (work / "main.c").write_text(GREET_MAIN_C)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(stage / "lib" / "libgreet.so"),
                    str(work / "greet.c")], check=True)
    subprocess.run(["cc", "-o", str(stage / "bin" / "greet"), str(work / "main.c"),
                    "-L", str(stage / "lib"), "-lgreet", "-Wl,-rpath,$ORIGIN/../lib"],
                   check=True)
    assemble_package("libgreet", "2.4.1", "linux-64", "h1a2b3c_0", out / "linux-64",
                     files_dir=stage, compression_level=1)


def _repackaged(out: Path, work: Path, dist_name: str, conda_name: str, noarch: bool) -> None:
    """The installed files of ``dist_name`` as a conda package named ``conda_name``."""
    dist = importlib.metadata.distribution(dist_name)
    site = Path(str(dist.locate_file("")))
    stage = work / conda_name
    root = stage / "site-packages" if noarch else stage / "lib" / f"python{PY_VERSION}" / (
        "site-packages")
    for file in dist.files or ():
        relative = Path(str(file))
        if relative.parts[0] == ".." or "__pycache__" in relative.parts:
            continue
        if relative.name in ("direct_url.json", "REQUESTED"):
            continue
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if relative.name == "INSTALLER":
            target.write_text("conda\n")
        else:
            shutil.copy2(site / relative, target)
    version = dist.version
    subdir = "noarch" if noarch else "linux-64"
    build = "pyhd8ed1ab_0" if noarch else f"py{PY_VERSION.replace('.', '')}h0_0"
    assemble_package(conda_name, version, subdir, build, out / subdir, files_dir=stage,
                     compression_level=1, noarch="python" if noarch else None,
                     depends=[f"python >={PY_VERSION}"] if noarch
                     else [f"python {PY_VERSION}.*"])


def build_channel(root: Path) -> Path:
    """The channel directory, indexed (linux-64 and noarch)."""
    channel = root / "channel"
    work = root / "work"
    for sub in ("linux-64", "noarch"):
        (channel / sub).mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    _python_package(channel, work)
    _greet_package(channel, work)
    _repackaged(channel, work, "dask", "dask-core", noarch=True)
    _repackaged(channel, work, "msgpack", "msgpack-python", noarch=False)
    _repackaged(channel, work, "toolz", "toolz", noarch=True)
    asyncio.run(rattler.index.index_fs(channel))
    return channel


def data_package(channel: Path, name: str, version: str, build: str, build_number: int,
                 depends: tuple[str, ...] = ()) -> Path:
    """A linux-64 package of one data file that names its build (``share/<name>/build``),
    so that two builds of one version can be told apart once installed; the channel
    is indexed again. Returns the package file."""
    stage = channel.parent / "work" / f"{name}-{version}-{build}"
    (stage / "share" / name).mkdir(parents=True, exist_ok=True)
    (stage / "share" / name / "build").write_text(f"{name} {version} {build}\n")
    output = assemble_package(name, version, "linux-64", build, channel / "linux-64",
                              files_dir=stage, build_number=build_number, compression_level=1,
                              depends=list(depends))
    (channel / "noarch").mkdir(exist_ok=True)
    asyncio.run(rattler.index.index_fs(channel))
    return Path(output.path)


class _TokenHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the channel only under ``/t/<TOKEN>/``; anything else is 403."""

    def translate_path(self, path: str) -> str:
        prefix = f"/t/{TOKEN}/"
        if not path.startswith(prefix):
            return "/nonexistent-packsync-path"
        return super().translate_path("/" + path[len(prefix):])

    def send_error(self, code: int, message: str | None = None, explain: str | None = None
                   ) -> None:
        super().send_error(403 if code == 404 and f"/t/{TOKEN}/" not in self.path else code,
                           message, explain)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve_channel(channel: Path) -> Iterator[str]:
    """The live channel URL (token included), served from a thread on 127.0.0.1."""
    handler = functools.partial(_TokenHandler, directory=str(channel.parent))
    with serve_http(handler) as base:
        yield f"{base}/t/{TOKEN}/{channel.name}"


def create_prefix(prefix: Path, channel_url: str, specs: list[str], cache: Path) -> None:
    """A conda environment made by rattler (as pixi and micromamba would), specs recorded."""
    async def make() -> None:
        gateway = rattler.Gateway(cache_dir=str(cache / "repodata"))
        records = await rattler.solve([channel_url], specs, gateway=gateway,
                                      platforms=["linux-64", "noarch"])
        # py-rattler 0.28 hands requested_specs to its core unwrapped: pass the core objects
        requested = [rattler.MatchSpec(s)._match_spec for s in specs]
        await rattler.install(records, prefix, cache_dir=cache / "pkgs", show_progress=False,
                              requested_specs=requested)
    asyncio.run(make())


WORKER_TASK = textwrap.dedent("""\
    def use_libgreet():
        import ctypes, os, subprocess, sys
        lib = ctypes.CDLL(os.path.join(sys.prefix, "lib", "libgreet.so"))
        out = subprocess.run([os.path.join(sys.prefix, "bin", "greet")], capture_output=True,
                             text=True, check=True).stdout.strip()
        import msgpack, dask
        return {"answer": lib.greet_answer(5), "greet": out, "python": sys.executable,
                "prefix": sys.prefix, "msgpack": msgpack.__file__, "dask": dask.__version__,
                "conda_meta": sorted(os.listdir(os.path.join(sys.prefix, "conda-meta")))}
""")
