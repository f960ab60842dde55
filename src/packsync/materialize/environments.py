"""Host side: a lock becomes a ready environment in ``<cache>/envs/<env_id>``.

A ready environment is found by its marker and reused without running uv once its
files match the marker's record (one ``lstat`` each: ``hostside.contents``).
Otherwise it is built under a file lock, at its final path (virtual environments
are not relocatable: scripts, ``.pyc`` files and ``RECORD`` carry their path), and
the ready marker is written last. A directory without the marker is the remains of
an interrupted build: it is never used, and the next build wipes it first. This process
holds the lease of every environment it materializes (``hostside.lease``), which the
Dask processes it starts inherit, and collects unused ones at most hourly.

A build reuses what this machine has. The lock's index wheels that uv installed in the
client come from uv's cache when it holds all of those (``uv_cache``: hash-pinned,
offline); the rest, or everything when it does not, from the lock's URLs. The
environment is byte-compiled (a worker starts much faster), and the ``.pyc`` files of the
last ready environment of the same Python and of the client's own site-packages serve
the new environment's identical sources (``bytecode``): a first launch compiles little
more than the client's own code, a relaunch after editing one local package compiles
that package.

The lock kept in the environment's record holds the placeholders of index tokens
(``lock.tokens``); ``uv pip sync`` reads it restored from a private file beside it,
removed as soon as uv is done (``hostside.placeholders``).
"""

from __future__ import annotations

import errno
import logging
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from packsync import uvtool
from packsync.config import cache_expiry, cache_max_size
from packsync.errors import MaterializeError
from packsync.hostside import contents, install, layout, lease, lifecycle, placeholders
from packsync.hostside.protocol import HostError
from packsync.lock.index_failures import explain
from packsync.lock.lockfile import WHEELS_DIR, Lock
from packsync.materialize.bytecode import Donors, compile_reusing, donors
from packsync.materialize.children import NO_SPACE_HINT, out_of_space, run_uv
from packsync.materialize.uv_cache import install_cached
from packsync.progress import NullReporter, Reporter, stage
from packsync.store import Store
from packsync.uv_errors import scrubbed_tail

logger = logging.getLogger(__name__)

RECORD_DIR = layout.RECORD_DIR
_HINTS = {
    "disk": NO_SPACE_HINT,
    "cache": "use a cache directory of your own: PACKSYNC_CACHE_DIR or packsync.cache-dir",
    "damaged": "close the clusters that run from it, or remove the directory",
    "secret": "configure that index with its full URL (the token in it) in uv's or pip's "
              "settings here, as where the lock was made",
}


@dataclass(frozen=True, kw_only=True, slots=True)
class Environment:
    """A ready environment on this machine."""

    path: Path
    digest: str
    cache_hit: bool

    @property
    def python(self) -> Path:
        return Path(layout.env_python(str(self.path)))


def environment_dir(lock: Lock, cache: Path) -> Path:
    return Path(layout.env_dir(str(cache), lock.env_id))


def ready_environment(lock: Lock, cache: Path) -> Environment | None:
    """The cached environment for ``lock`` if it is ready, intact and trusted: the cheap
    path of every relaunch (a ``stat`` of each of its files). This process holds its lease."""
    path = environment_dir(lock, cache)
    if not path.is_dir():
        return None
    try:
        lease.hold(str(path))
        problems = contents.examine(str(path), lock.digest)
    except OSError as error:
        raise disk_full(error, error.filename or str(path), lock) from None
    if problems is None:
        return None
    if problems:
        logger.warning("environment %s is not used as it is: %s", lock.env_id[:12],
                       contents.describe(problems))
        return None
    return Environment(path=path, digest=lock.digest, cache_hit=True)


def materialize(
    lock: Lock,
    *,
    cache: Path,
    store: Store,
    python: str | None = None,
    uv_env: Mapping[str, str] | None = None,
    reporter: Reporter | None = None,
    conda_channels: Mapping[str, str] | None = None,
) -> Environment:
    """The ready environment for ``lock``, built if it is not in the cache yet.

    ``conda_channels`` maps the lock's redacted conda channel URLs to live ones (tokens
    included): kept in memory, handed to the conda installer only.
    """
    reporter = reporter or NullReporter()
    with stage(reporter, "materialize", lock.env_id[:12]) as current:
        found = ready_environment(lock, cache)
        if found is not None:
            current.detail = "cache hit"
            collect_unused(cache)
            return found

        def build(path: str) -> None:
            _build(lock, Path(path), store, python, uv_env or {}, reporter,
                   cache=cache, conda_channels=conda_channels or {})

        try:
            path, hit = install.materialize(str(cache), lock.env_id, lock.digest, build,
                                            say=logger.warning)
        except HostError as error:
            raise MaterializeError(
                str(error), path=str(environment_dir(lock, cache)), digest=lock.digest,
                hint=_HINTS.get(error.kind, "nothing half-built is used; launch again"),
            ) from None
        except OSError as error:
            raise disk_full(error, error.filename or str(cache), lock) from None
        current.detail = ("cache hit (built by another process)" if hit
                          else f"built {lock.package_count} packages")
        collect_unused(cache)
        return Environment(path=Path(path), digest=lock.digest, cache_hit=hit)


def collect_unused(cache: Path) -> None:
    """The automatic pass at launch (at most hourly): environments unused for longer than
    ``packsync.cache-expiry``, and beyond ``packsync.cache-max-size``, are removed. Never
    the one just materialized (this process holds its lease). A failure only logs."""
    try:
        result = lifecycle.collect_if_due(str(cache), expiry=cache_expiry(),
                                          max_size=cache_max_size())
    except OSError as error:
        logger.warning("collecting unused environments in %s failed: %s", cache, error)
        return
    if result and result["removed"]:
        logger.info("removed %d unused environments (%.1f MB) from %s", len(result["removed"]),
                    result["freed"] / 1e6, cache)


def _build(
    lock: Lock,
    path: Path,
    store: Store,
    python: str | None,
    uv_env: Mapping[str, str],
    reporter: Reporter,
    *,
    cache: Path,
    conda_channels: Mapping[str, str],
) -> None:
    conda = lock.conda
    if conda is None or not conda.python:
        interpreter = find_python(lock.python, python)
        reporter.step("materialize", f"creating a Python {lock.python} environment")
        _venv(path, interpreter, lock, uv_env)
        if conda is None:
            _install_from_uv_cache(path, interpreter, lock, uv_env, reporter)
    if conda is not None:
        # before the pip part, which may build on it; Python too when conda provides it
        reporter.step("materialize", f"installing {len(conda.packages)} conda packages")
        from packsync.conda.install import install_conda

        install_conda(conda, path, cache=cache, channels=conda_channels, digest=lock.digest)
    record = path / RECORD_DIR
    record.mkdir()
    lock.write(record / "pylock.toml")
    for wheel in lock.local_wheels:
        store.fetch(wheel.sha256, record / WHEELS_DIR / wheel.filename)
    reporter.step("materialize", f"installing {lock.package_count} packages")
    # byte code already on this machine serves every identical file; conda's is its own
    given = Donors() if conda is not None else donors(cache, path)
    # ``pip sync`` would uninstall the Python packages conda just installed
    command = ["sync"] if conda is None else ["install", "--no-deps", "-r"]
    if conda is None or lock.package_count:
        # the index tokens the lock holds as placeholders: in a private file for this sync only
        _, tokens = placeholders.split_environment(uv_env)
        with placeholders.live_lock(str(record / "pylock.toml"), lock.text, tokens) as live:
            _uv(
                [
                    "pip", command[0], "--quiet",
                    *([] if given else ["--compile-bytecode"]),
                    "--preview-features", "pylock", "--python", str(path / "bin" / "python"),
                    *command[1:], live,
                ],
                lock,
                uv_env,
                path,
            )
    if given:
        reporter.step("materialize", f"byte-compiling, reusing {given.describe()}")
        counts = compile_reusing(path, given, lock.env_id, lock.digest)
        logger.info("environment %s byte-compiled reusing %s: %s", lock.env_id[:12],
                    given.describe(), counts)
    shutil.rmtree(record / WHEELS_DIR, ignore_errors=True)


def _venv(path: Path, interpreter: str, lock: Lock, uv_env: Mapping[str, str]) -> None:
    _uv(["venv", "--quiet", "--relocatable", "--no-project", "--python", interpreter,
         str(path)], lock, uv_env, path)


def _install_from_uv_cache(path: Path, interpreter: str, lock: Lock, uv_env: Mapping[str, str],
                           reporter: Reporter) -> None:
    """The lock's index wheels from uv's cache when it holds them all; else a fresh venv, so
    that the sync installs everything from the lock's URLs as it always did."""
    installed = install_cached(lock, path / "bin" / "python", uv_env)
    if installed is None:
        shutil.rmtree(path)
        _venv(path, interpreter, lock, uv_env)
    elif installed:
        reporter.step("materialize", f"{installed} packages from uv's cache")
        logger.info("environment %s: %d packages installed from uv's cache", lock.env_id[:12],
                    installed)


def disk_full(error: OSError, path: str, lock: Lock) -> MaterializeError:
    """An OS error while building, said plainly (a full disk above all), naming the path."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return MaterializeError(
            f"cannot build environment {lock.env_id[:12]}: no space left on the device of "
            f"{path}", path=path, digest=lock.digest, hint=NO_SPACE_HINT)
    return MaterializeError(
        f"cannot build environment {lock.env_id[:12]}: {error.strerror or error}: {path}",
        path=path, digest=lock.digest,
        hint="fix the permissions there, or set PACKSYNC_CACHE_DIR; nothing half-built is used",
    )


def _uv(args: list[str], lock: Lock, uv_env: Mapping[str, str], path: Path) -> None:
    returncode, output = run_uv(args, uv_env)
    if returncode != 0:
        command = " ".join(args[:2]) if args[0] == "pip" else args[0]
        full = out_of_space(output, path, lock.digest, f"uv {command}")
        if full is not None:
            raise full
        explained = explain(
            output,
            uv_env,
            MaterializeError,
            action=f"installing environment {lock.env_id[:12]}",
            digest=lock.digest,
        )
        if explained is not None:
            raise explained
        raise MaterializeError(
            f"uv {command} failed while building environment {lock.env_id[:12]}",
            digest=lock.digest,
            log_tail=scrubbed_tail(output, uv_env),
            hint="the log names the package at fault; nothing of this environment will be used",
        )


def find_python(version: str, explicit: str | None = None) -> str:
    """An interpreter of the lock's Python version; a patch difference only warns."""
    candidate = explicit or _uv_find_python(version)
    actual = install.python_version_of(candidate)
    if actual is None:
        raise MaterializeError(
            f"{candidate} is not a working Python interpreter",
            path=candidate,
            hint="pass python= the path of a Python " + version,
        )
    if actual.split(".")[:2] != version.split(".")[:2]:
        raise MaterializeError(
            f"{candidate} is Python {actual}, but the environment needs Python {version}",
            path=candidate,
            hint=f"pass python= the path of a Python {'.'.join(version.split('.')[:2])}",
        )
    if actual != version:
        logger.warning("using Python %s for an environment locked on Python %s", actual, version)
    return candidate


def _uv_find_python(version: str) -> str:
    for request in (version, ".".join(version.split(".")[:2])):
        result = uvtool.run_uv(["python", "find", "--no-project", request])
        if result.returncode == 0 and result.stdout.strip():
            return result.stdout.strip().splitlines()[-1]
    raise MaterializeError(
        f"no Python {version} interpreter was found on this machine",
        hint=f"install Python {version}, or pass python= the path of one",
    )
