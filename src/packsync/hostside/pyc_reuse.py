"""Byte-compiles a new environment, reusing the ``.pyc`` files of an earlier one.

A relaunch after one edit of a local package builds a new environment that differs
from the last one by a single wheel, yet compiling all of it costs seconds. Its other
sources are the earlier environment's files: the same inode when uv links both from
its cache, else the same bytes extracted again (with a new mtime). A ``.pyc`` depends
only on the source bytes and the interpreter's bytecode version: its header names the
source's mtime and size (or hash), and the import system replaces the path compiled
into it (``co_filename``) with the real source path at load time
(``_imp._fix_co_filename``). So the earlier ``.pyc`` is valid here when:

* the source is the same file, or has the same bytes (never judged by mtime and size
  alone: a reproducible wheel build of an edited file keeps both);
* its magic number is this interpreter's;
* its header matches the donor's source, so its body is the byte code of those bytes;
* its header matches this source (mtime and size, or the source hash), which is the
  check the import system makes; then it is hard-linked. A timestamp ``.pyc`` of the
  same bytes with another mtime is copied with a header written for this source.

Everything else is compiled, as uv compiles (``compileall.compile_file``, forced,
quiet, the interpreter's default invalidation mode).

A donor is an earlier environment (``DONOR``, its prefix) or the site-packages directory
of the client's own environment (``--site DIR``, mirroring this environment's
site-packages), checked alike; the first that fits serves a file. A ``.pyc`` is
hard-linked (copied where that is refused): it is never written in place, as the import
system, ``py_compile`` and installers replace a ``.pyc`` by renaming a new file over it or
remove it, which leaves a link's contents as they were.

The new environment's own interpreter runs this file (``python -I pyc_reuse.py [DONOR]
[--site DIR]...``): standard library only, and it must import nothing from packsync. It
prints one JSON line: how many files were reused and compiled.
"""

from __future__ import annotations

import compileall
import importlib.util
import json
import os
import shutil
import sys
import sysconfig
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

_HEADER = 16  # magic, flags, then mtime + size or the 8-byte source hash (PEP 552)
_PARALLEL_FROM = 64  # fewer files compile faster than worker processes start


def site_directories() -> list[str]:
    """The running environment's site-packages directories, as uv compiles them."""
    paths = sysconfig.get_paths()
    found: list[str] = []
    for key in ("purelib", "platlib"):
        path = os.path.realpath(paths[key])
        if os.path.isdir(path) and path not in found:
            found.append(path)
    return found


def sources(directories: list[str]) -> list[str]:
    """Every ``.py`` file below ``directories``, as ``compileall`` would find them."""
    found: list[str] = []
    for directory in directories:
        for root, dirs, files in os.walk(directory):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            found.extend(os.path.join(root, name) for name in files if name.endswith(".py"))
    return found


def _same_bytes(a: str, b: str) -> bool:
    with open(a, "rb") as first, open(b, "rb") as second:
        while True:
            chunk = first.read(1 << 16)
            if chunk != second.read(1 << 16):
                return False
            if not chunk:
                return True


def _header_fits(header: bytes, source: str, stat: os.stat_result) -> bool:
    """What ``SourceLoader.get_code`` checks before it trusts a ``.pyc``."""
    if len(header) < _HEADER or header[:4] != importlib.util.MAGIC_NUMBER:
        return False
    flags = int.from_bytes(header[4:8], "little")
    if flags & ~0b11:
        return False
    if flags & 0b1:  # hash-based: the hash of these source bytes
        with open(source, "rb") as file:
            return header[8:16] == importlib.util.source_hash(file.read())
    mtime = int.from_bytes(header[8:12], "little")
    size = int.from_bytes(header[12:16], "little")
    return mtime == (int(stat.st_mtime) & 0xFFFFFFFF) and size == (stat.st_size & 0xFFFFFFFF)


def _timestamp_header(stat: os.stat_result) -> bytes:
    return (
        importlib.util.MAGIC_NUMBER
        + (0).to_bytes(4, "little")
        + (int(stat.st_mtime) & 0xFFFFFFFF).to_bytes(4, "little")
        + (stat.st_size & 0xFFFFFFFF).to_bytes(4, "little")
    )


def reuse(source: str, prefix: str, donor: str) -> bool:
    """Give ``source`` the donor's ``.pyc`` if it is valid here; False if it must be compiled.

    ``prefix`` is the directory of this environment that ``donor`` mirrors.
    """
    if not source.startswith(prefix + os.sep):
        return False  # not below what the donor mirrors
    try:
        target = importlib.util.cache_from_source(source)
    except NotImplementedError:  # an implementation without byte-code caching
        return False
    donor_source = donor + source[len(prefix):]  # (paths joined as strings: thousands of files)
    donor_pyc = donor + target[len(prefix):]
    try:
        stat = os.stat(source)
        donor_stat = os.stat(donor_source)
        if (stat.st_dev, stat.st_ino) != (donor_stat.st_dev, donor_stat.st_ino) and (
            stat.st_size != donor_stat.st_size
            or not _same_bytes(source, donor_source)
        ):
            return False
        with open(donor_pyc, "rb") as file:
            header = file.read(_HEADER)
        if not _header_fits(header, donor_source, donor_stat):
            return False  # stale in the donor itself: its body may be of other bytes
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if _header_fits(header, source, stat):
            try:
                os.link(donor_pyc, target)
            except FileExistsError:
                return False  # shipped by the wheel: compile over it, as uv does
            except OSError:  # another file system, another owner, or no hard links here
                shutil.copyfile(donor_pyc, target)
            return True
        if int.from_bytes(header[4:8], "little") != 0:
            return False  # hash-based: it would have fit, the bytes being the same
        # same bytes, another mtime (uv copied instead of linking): a header for this file
        with open(donor_pyc, "rb") as file:
            body = file.read()[_HEADER:]
        with open(target, "xb") as out:
            out.write(_timestamp_header(stat) + body)
        return True
    except (OSError, ValueError):
        return False


def _compile(paths: list[str]) -> int:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore")
        # uv's way: forced, quiet, and a source that does not compile is no failure
        return sum(bool(compileall.compile_file(path, force=True, quiet=2)) for path in paths)


def compile_all(paths: list[str]) -> None:
    """Compile ``paths`` in worker processes once there are enough to pay for starting them."""
    if len(paths) < _PARALLEL_FROM:
        _compile(paths)
        return
    workers = min(os.cpu_count() or 1, 8)
    chunks = [paths[i::workers * 4] for i in range(workers * 4)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(_compile, chunks))


def bytecode_donor(envs: str, path: str, ready_marker: str,
                   accept: Callable[[str], bool]) -> str | None:
    """The most recently used ready environment in ``envs`` of the same Python as the one
    at ``path`` that ``accept`` trusts: the donor of its byte code. Only a ready one
    (``ready_marker`` present): its files are complete and never change again. Local
    builds and hosts both ask this; ``accept`` is the ready marker's check (its owner and
    its lock), as for any environment used: a directory planted in a shared cache is
    never a donor."""
    python = python_of(path)
    if python is None:
        return None
    try:
        candidates = list(os.scandir(envs))
    except OSError:
        return None
    found: list[tuple[float, str]] = []
    for entry in candidates:
        if entry.path == path or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            found.append((os.stat(os.path.join(entry.path, ready_marker)).st_mtime, entry.path))
        except OSError:
            continue
    for _, candidate in sorted(found, reverse=True):
        if python_of(candidate) == python and accept(candidate):
            return candidate
    return None


def python_of(path: str) -> tuple[str, str] | None:
    """Implementation and major.minor of a virtual environment, from its ``pyvenv.cfg``."""
    try:
        with open(os.path.join(path, "pyvenv.cfg"), encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError):
        return None
    values = {
        key.strip().lower(): value.strip()
        for key, sep, value in (line.partition("=") for line in text.splitlines())
        if sep
    }
    version = values.get("version_info", values.get("version", ""))
    major_minor = ".".join(version.split(".")[:2])
    if not major_minor:
        return None
    return values.get("implementation", "CPython").lower(), major_minor


def donors(argv: list[str], prefix: str, sites: list[str]) -> list[tuple[str, str]]:
    """``(directory of this environment, donor mirroring it)`` for each donor in ``argv``."""
    found: list[tuple[str, str]] = []
    arguments = iter(argv)
    for argument in arguments:
        if argument == "--site":
            directory = os.path.realpath(next(arguments))
            found.extend((site, directory) for site in sites)
        else:
            found.append((prefix, os.path.realpath(argument)))
    return found


def main(argv: list[str]) -> int:
    sites = site_directories()
    given = donors(argv, os.path.realpath(sys.prefix), sites)
    rest: list[str] = []
    reused = 0
    for source in sources(sites):
        if any(reuse(source, mirrored, donor) for mirrored, donor in given):
            reused += 1
        else:
            rest.append(source)
    compile_all(rest)
    print(json.dumps({"reused": reused, "compiled": len(rest)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
