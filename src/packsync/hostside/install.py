"""An environment made ready in a cache: the one procedure the client and every host follow.

``materialize`` finds a ready environment by its marker and a check of its files
(``contents``); otherwise it takes the environment's build lock (``buildlock``), clears
what an interrupted build left, builds (from the artifact, or with uv from the indexes)
and writes the ready marker, with the record of every file, last. A directory without
the marker is never used. What a crashed build left is first renamed aside and then
deleted, and the crashed build's children (uv outlives a ``kill -9`` of its parent) are
ended first: they hold the build lock until then. The caller holds the environment's
lease from the start (``lease``): it is in use, and a damaged environment in use by
other processes is refused rather than pulled from under them. A cache that other users
could write into is refused (``check_cache_root``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
import re
import shutil
import stat
import subprocess
import tempfile
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

from packsync.hostside import (
    artifact,
    buildlock,
    contents,
    layout,
    lease,
    placeholders,
    pyc_reuse,
    uvconfig,
)
from packsync.hostside.protocol import HostError, emit
from packsync.hostside.supervise import Watchdog, supervised
from packsync.hostside.transfer import copy_verified, disk_error

INHERITED_PREFIXES = (  # settings of the user's own tools that must not steer our uv
    "PIP_", "UV_INDEX", "UV_EXTRA_INDEX_URL", "UV_DEFAULT_INDEX", "UV_FIND_LINKS",
    "UV_PYTHON", "UV_SYSTEM_PYTHON", "VIRTUAL_ENV", "CONDA_PREFIX",
    "UV_CONFIG_FILE",  # read even under UV_NO_CONFIG
)


@contextlib.contextmanager
def locked(path: str) -> Iterator[None]:
    """Hold the exclusive lock of the file ``path`` (the lock ``filelock`` takes too)."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def check_cache_root(cache: str) -> None:
    """Create the cache owner-only, or refuse one that another user could write into (its
    environments, byte-code donors and uv binary are run): as OpenSSH's StrictModes does."""
    try:
        os.makedirs(cache, mode=0o700, exist_ok=True)
        for path in (cache, os.path.join(cache, "envs")):
            with contextlib.suppress(FileExistsError):  # another job on the machine made it
                os.mkdir(path, 0o700)
            info = os.stat(path)  # a cache on scratch space may be reached by a link
            if info.st_uid != os.getuid():
                raise HostError(
                    f"the cache {path} belongs to uid {info.st_uid}, not to this user "
                    f"(uid {os.getuid()}): its environments would run another user's code; "
                    "use a cache of your own (PACKSYNC_CACHE_DIR)", kind="cache")
            if not stat.S_ISDIR(info.st_mode):
                raise HostError(f"the cache {path} is not a directory", kind="cache")
            if info.st_mode & 0o022:
                raise HostError(
                    f"the cache {path} is writable by other users "
                    f"(mode {stat.filemode(info.st_mode)}): anyone could plant code in it; "
                    f"chmod go-w {path}, or use a cache of your own", kind="cache")
    except OSError as error:
        raise disk_error(error, cache) from None


def materialize(cache: str, env_id: str, digest: str, build: Callable[[str], None],
                say: Callable[[str], None] | None = None) -> tuple[str, bool]:
    """The ready environment's directory, and whether it was there already.

    ``build(path)`` makes the environment at ``path`` (which does not exist); if it
    raises, nothing of it stays. This process holds the environment's lease from now on
    (``lease``). A damaged environment is built again, unless other processes run from
    it: that is refused. ``say`` tells what happens (default: a step event to the client).
    """
    check_cache_root(cache)
    path = layout.env_dir(cache, env_id)
    try:
        return _materialize(cache, env_id, digest, build, say, path)
    except OSError as error:  # a full disk above all: said plainly, with the path written
        raise disk_error(error, str(error.filename2 or error.filename or path)) from None


def _materialize(cache: str, env_id: str, digest: str, build: Callable[[str], None],
                 say: Callable[[str], None] | None, path: str) -> tuple[str, bool]:
    lease.hold(path)
    if contents.examine(path, digest) == []:
        return path, True
    with buildlock.holding(layout.env_lock(cache, env_id)):
        problems = contents.examine(path, digest)
        if problems == []:
            return path, True
        if problems:
            refuse_if_in_use(path, env_id, problems)
            (say or _step)(f"environment {env_id[:12]} is damaged "
                           f"({contents.describe(problems)}): building it again")
        clear_leftovers(cache, env_id)
        discard(path)
        try:
            build(path)
            contents.mark_ready(path, digest)
        except BaseException:
            discard(path)
            raise
    return path, False


def _step(message: str) -> None:
    emit("step", message=message)


def refuse_if_in_use(path: str, env_id: str, problems: list[str]) -> None:
    """A damaged environment that running processes use is not pulled from under them."""
    if not lease.only_holder(path):
        raise HostError(
            f"environment {env_id[:12]} at {path} is damaged ({contents.describe(problems)}) "
            "and running processes use it: close the clusters that run from it, then "
            "launch again (it is rebuilt)", kind="damaged")


def trusted_uv(cache: str, sha256: str) -> str:
    """The cached uv binary's path; a binary there without that hash is removed first (it
    would run with the user's index credentials), so that it is fetched again."""
    path = layout.uv_path(cache, sha256)
    try:
        if os.access(path, os.X_OK) and layout.sha256_file(path) != sha256:
            os.unlink(path)
    except OSError as error:
        raise disk_error(error, path) from None
    return path


def discard(path: str) -> None:
    """Remove an unfinished environment, even while an orphaned child still writes to it."""
    if not os.path.lexists(path):
        return
    aside = tempfile.mkdtemp(dir=os.path.dirname(path),
                             prefix=f".discarded-{os.path.basename(path)}-")
    os.rename(path, os.path.join(aside, "env"))
    shutil.rmtree(aside, ignore_errors=True)


def clear_leftovers(cache: str, env_id: str) -> None:
    """What crashed runs left: discarded directories, and staging directories of this
    environment (its lock is held, so no unpack of it is running)."""
    root = os.path.join(cache, "envs")
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return
    for name in names:
        if name.startswith((f".discarded-{env_id}-", artifact.staging_prefix(env_id))):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)


# --- from the artifact ---------------------------------------------------------------------

def install_artifact(path: str, manifest: dict[str, Any], chunk_file: Callable[[str], str], *,
                     python: str, python_version: str, platform: str) -> None:
    """Unpack the environment's archive at ``path``, pointed at this host's ``python``."""
    try:
        artifact.check_compatible(manifest, python_version=python_version, platform=platform)
        artifact.unpack(manifest, chunk_file, path, python=python, python_version=python_version)
    except artifact.ArtifactError as error:
        raise HostError(str(error), kind=error.kind) from None
    except OSError as error:
        raise disk_error(error, path) from None


# --- from the indexes, with uv --------------------------------------------------------------

def uv_environment(extra: dict[str, str]) -> dict[str, str]:
    """This machine's environment without index settings, plus ``extra``: the indexes and
    credentials the client (or the job) hands uv. uv reads no netrc of this machine, whose
    ``default`` entry it would send to every index, unless ``extra`` names one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(INHERITED_PREFIXES)}
    env["NETRC"] = os.devnull
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env["UV_NO_PROGRESS"] = "1"
    env.update(extra)
    return env


def run_uv(uv: str, args: list[str], env: dict[str, str], what: str,
           watchdog: Watchdog | None) -> None:
    returncode, log = supervised([uv, *args], env, watchdog)
    if returncode != 0:
        raise HostError(f"uv {what} failed (exit status {returncode})"
                        + _missing_credentials(log), log=log)


def _missing_credentials(log: str) -> str:
    """What to do when uv met an index that must be authenticated to (``authenticate =
    "always"``) and this machine gave it no credentials."""
    found = re.search(r"Missing credentials for:? *(\S+)", log)
    if found is None:
        return ""
    host = urllib.parse.urlsplit(found.group(1).strip("`'\".,")).hostname or "an index"
    return (f": {host} needs credentials on this machine; give them in its environment as "
            "UV_INDEX_<NAME>_USERNAME and UV_INDEX_<NAME>_PASSWORD (NAME: the index's "
            "name), or in a netrc file named by NETRC")


def build_with_uv(path: str, *, lock_text: str, uv: str, python: str,
                  wheels: list[dict[str, str]], wheel_dir: str, uv_env: dict[str, str],
                  watchdog: Watchdog | None = None) -> None:
    """Make the environment at ``path`` with ``uv venv`` and ``uv pip sync``, byte-compiled.

    The lock kept in the environment's record is the one given, index tokens as
    placeholders; uv installs it restored from a private file removed right after
    (``placeholders``), and what it says is masked again before it is reported.
    """
    given, tokens = placeholders.split_environment(uv_env)
    with uvconfig.configured(uv_environment(given)) as env:  # per-index settings in a file
        _build_with_uv(path, lock_text=lock_text, uv=uv, python=python, wheels=wheels,
                       wheel_dir=wheel_dir, env=env, tokens=tokens, watchdog=watchdog)


def _build_with_uv(path: str, *, lock_text: str, uv: str, python: str,
                   wheels: list[dict[str, str]], wheel_dir: str, env: dict[str, str],
                   tokens: dict[str, str], watchdog: Watchdog | None) -> None:
    emit("step", message="creating the environment")
    run_uv(uv, ["venv", "--quiet", "--relocatable", "--no-project", "--python", python, path],
           env, "venv", watchdog)
    record = os.path.join(path, layout.RECORD_DIR)
    os.makedirs(os.path.join(record, layout.WHEELS_DIR))
    with open(os.path.join(record, "pylock.toml"), "w", encoding="utf-8") as handle:
        handle.write(lock_text)
    for wheel in wheels:
        copy_verified(layout.blob_path(wheel_dir, wheel["sha256"]), wheel["sha256"],
                      os.path.join(record, layout.WHEELS_DIR, wheel["filename"]))
    installed = os.path.join(record, "pylock.toml")
    accepted = lock_for_interpreter(lock_text, venv_version(path))
    if accepted != lock_text:
        installed = os.path.join(record, "pylock.host.toml")
        with open(installed, "w", encoding="utf-8") as handle:
            handle.write(accepted)
    donor = pyc_reuse.bytecode_donor(os.path.dirname(path), path, layout.READY_MARKER,
                                     trusted_donor)
    emit("step", message="installing")
    try:
        with placeholders.live_lock(installed, accepted, tokens) as live:
            run_uv(uv, [
                "pip", "sync", "--quiet", *([] if donor else ["--compile-bytecode"]),
                "--preview-features", "pylock", "--python", layout.env_python(path), live,
            ], env, "pip sync", watchdog)
    except HostError as error:
        raise HostError(placeholders.mask(str(error), tokens), kind=error.kind,
                        log=placeholders.mask(error.log, tokens)) from None
    if donor:
        emit("step", message=f"byte-compiling, reusing environment {os.path.basename(donor)[:12]}")
        counts = compile_reusing(path, donor, watchdog)
        emit("bytecode", donor=os.path.basename(donor), **counts)
    shutil.rmtree(os.path.join(record, layout.WHEELS_DIR), ignore_errors=True)


def trusted_donor(path: str) -> bool:
    """Whether the ready environment at ``path`` may lend its byte code: its marker is
    this user's and names the lock the environment holds."""
    return not contents.trusted(path, None)


def compile_reusing(path: str, donor: str, watchdog: Watchdog | None) -> dict[str, int]:
    """Byte-compile the environment at ``path`` with its own interpreter, hard-linking the
    donor's ``.pyc`` of identical files; how many were reused and compiled."""
    script = pyc_reuse.__file__ or ""
    if not os.path.isfile(script):  # sent as source, not installed: write it out first
        script = os.path.join(path, layout.RECORD_DIR, "pyc_reuse.py")
        with open(script, "w", encoding="utf-8") as handle:
            handle.write(_source_of(pyc_reuse))
    returncode, log = supervised([layout.env_python(path), "-I", script, donor], None, watchdog)
    if returncode != 0:
        raise HostError(f"byte-compiling failed (exit status {returncode})", log=log)
    try:
        counts = json.loads(log.strip().splitlines()[-1])
        return {"reused": int(counts["reused"]), "compiled": int(counts["compiled"])}
    except (IndexError, ValueError, KeyError, TypeError):
        raise HostError("byte-compiling gave no counts", log=log) from None


def _source_of(module: Any) -> str:
    loader = module.__spec__.loader
    source = loader.get_source(module.__name__) if hasattr(loader, "get_source") else None
    if not source:
        raise HostError(f"the source of {module.__name__} is not available", kind="internal")
    return str(source)


def venv_version(path: str) -> str:
    """The Python version of the environment at ``path``, from its ``pyvenv.cfg``."""
    try:
        with open(os.path.join(path, "pyvenv.cfg"), encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.partition("=")
                if key.strip() in ("version_info", "version"):
                    return value.strip()
    except OSError:
        pass
    return platform.python_version()


_REQUIRES_PYTHON = re.compile(r'^requires-python = ">=(\d+)\.(\d+)\.(\d+)"$', re.MULTILINE)


def lock_for_interpreter(lock_text: str, version: str) -> str:
    """The lock as this interpreter installs it: an earlier patch release is accepted.

    uv writes the client's own release as the lock's ``requires-python`` lower bound
    (``>=3.11.7``); a host with 3.11.2 gets the same packages and hashes, with the
    bound at the major.minor (the client warned about the difference; each package's
    own markers are still evaluated against this interpreter).
    """
    match = _REQUIRES_PYTHON.search(lock_text)
    if match is None:
        return lock_text
    wanted = tuple(int(g) for g in match.groups())
    try:
        have = tuple(int(n) for n in version.split(".")[:3])
    except ValueError:
        return lock_text
    if have[:2] != wanted[:2] or have >= wanted:
        return lock_text
    relaxed = f'requires-python = ">={wanted[0]}.{wanted[1]}"'
    return lock_text[:match.start()] + relaxed + lock_text[match.end():]


def python_version_of(python: str) -> str | None:
    """The version of the interpreter ``python``, or None when it does not run."""
    try:
        result = subprocess.run(
            [python, "-c", "import platform; print(platform.python_version())"],
            capture_output=True, text=True, check=False, timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None
