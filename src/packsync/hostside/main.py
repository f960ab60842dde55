"""The host side of packsync, in one standard-library-only script.

A host needs nothing but Python: the client sends this file over SSH to the host's
interpreter (``python -I -c LOADER``, the script itself and a JSON header on stdin, so
no secret ever appears on a command line), or a batch job runs it from a shared store
(``packsync worker-command``). It then

* ``probe``: reports the interpreter and whether the environment, uv and code are
  already in the host's cache (touching the ready marker: one round trip on a relaunch);
* ``prepare``: receives uv, the lock, local wheels and the code bundle (each verified
  against its SHA-256) on stdin, or downloads them from an object store with URLs the
  client presigned for this host (bearer credentials: they arrive in the header, are
  used in memory and never logged or written), and materializes the environment exactly as
  ``packsync.materialize.environments`` does: ``<cache>/envs/<env_id>``, under a ``flock``, built
  at its final path with ``uv venv`` + ``uv pip sync``, ready marker written last.
  Byte code comes from ``--compile-bytecode``, or, when the host has an earlier ready
  environment of the same Python, from ``packsync/hostside/pyc_reuse.py`` (its source arrives
  in the header) run by the new environment's interpreter: identical files keep the
  earlier ``.pyc``. Index credentials arrive in the header and reach only the
  uv child's environment, in memory;
* ``run``: supervises one Dask process in a process group of its own, and ends the
  whole group when the SSH channel closes (the client closed, died or lost the host);
* ``cleanup``: ends process groups and removes live code links left by a cluster;
* ``worker`` (command-line mode): materialize from a shared store, then exec the
  environment's interpreter with the given arguments.

Every message to the client is one JSON object per line on stdout.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import zipfile
from typing import IO, Any

READY_MARKER = ".packsync-ready"  # as in packsync.materialize.environments
RECORD_DIR = ".packsync"
WHEELS_DIR = "wheels"
CODE_READY = ".packsync-ready"  # as in packsync.codesync.bundle
CODE_MANIFEST = ".packsync-manifest.json"
LOG_LINES = 40
_INDEX_VARIABLES = (  # as in packsync.uvtool: a long-running process needs no index secret
    "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "UV_INDEX", "UV_DEFAULT_INDEX",
    "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS",
)
STOP_GRACE = 5.0
_INHERITED_PREFIXES = (  # as in packsync.uvtool
    "PIP_", "UV_INDEX", "UV_EXTRA_INDEX_URL", "UV_DEFAULT_INDEX", "UV_FIND_LINKS",
    "UV_PYTHON", "UV_SYSTEM_PYTHON", "VIRTUAL_ENV", "CONDA_PREFIX",
)


class HostError(Exception):
    """A failure to report to the client, with the tail of the log that explains it."""

    def __init__(self, message: str, log: str = "", kind: str = "materialize") -> None:
        super().__init__(message)
        self.log = log
        self.kind = kind


_OUTPUT = {"events": True}  # False in command-line mode: stdout belongs to the program


def emit(event: str, **fields: object) -> None:
    if not _OUTPUT["events"]:  # a job's log is its stderr: steps as plain lines there
        if event == "step":
            sys.stderr.write(f"packsync: {fields.get('message', '')}\n")
            sys.stderr.flush()
        return
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


# --- the cache ----------------------------------------------------------------------------

def cache_root(cache: str) -> str:
    return os.path.abspath(os.path.expanduser(cache))


def blob_path(store: str, sha256: str) -> str:
    """``<store>/sha256/<ab>/<digest>``: the layout of packsync's local store."""
    return os.path.join(store, "sha256", sha256[:2], sha256)


def uv_path(cache: str, sha256: str) -> str:
    return os.path.join(cache, "bin", f"uv-{sha256[:16]}")


def env_dir(cache: str, env_id: str) -> str:
    return os.path.join(cache, "envs", env_id)


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ready(cache: str, env_id: str) -> bool:
    try:
        os.utime(os.path.join(env_dir(cache, env_id), READY_MARKER))  # also records the use
        return True
    except FileNotFoundError:
        return False


def code_ready(cache: str, code_id: str) -> bool:
    if not code_id:
        return True
    try:
        os.utime(os.path.join(cache, "code", code_id, CODE_READY))
        return True
    except FileNotFoundError:
        return False


def receive(stream: IO[bytes], size: int | None, sha256: str, destination: str,
            mode: int = 0o644) -> None:
    """Copy ``size`` bytes (all, if None) from ``stream`` to ``destination``, kept only if
    they hash right."""
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(destination), prefix=".incoming-")
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            left = size
            while left is None or left:
                block = stream.read(1 << 20 if left is None else min(left, 1 << 20))
                if not block:
                    if left is None:
                        break
                    raise HostError(f"the connection ended while receiving {sha256[:12]}")
                digest.update(block)
                out.write(block)
                if left is not None:
                    left -= len(block)
        if digest.hexdigest() != sha256:
            raise HostError(f"received bytes do not match sha256:{sha256}", kind="integrity")
        os.chmod(tmp, mode)
        os.replace(tmp, destination)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def copy_verified(source: str, sha256: str, destination: str, mode: int = 0o644) -> None:
    """A store object copied out of a shared store, refused if it was altered."""
    if not os.path.exists(source):
        raise HostError(f"{source} is not in the shared store", kind="store")
    with open(source, "rb") as handle:
        receive(handle, os.path.getsize(source), sha256, destination, mode)


def download(url: str, sha256: str, destination: str, mode: int = 0o644) -> None:
    """A store object fetched with a presigned URL, refused if it was altered.

    The URL is a credential: no message names it (urllib's errors do not).
    """
    try:
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - presigned https
            receive(response, None, sha256, destination, mode)
    except urllib.error.HTTPError as error:
        raise HostError(f"downloading sha256:{sha256} from the store failed: HTTP {error.code} "
                        f"{error.reason}", kind="store") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", None) or type(error).__name__
        raise HostError(f"downloading sha256:{sha256} from the store failed: {reason}",
                        kind="store") from None


# --- materializing ------------------------------------------------------------------------

class Watchdog:
    """Ends the current child process group when the client goes away (stdin EOF)."""

    def __init__(self) -> None:
        self.child: subprocess.Popen[bytes] | None = None
        self.gone = threading.Event()

    def start(self, stdin: IO[bytes]) -> None:
        def wait() -> None:
            try:
                while stdin.read(65536):
                    pass
            except (OSError, ValueError):
                pass
            self.gone.set()
            kill_group(self.child)

        threading.Thread(target=wait, daemon=True).start()


def kill_group(child: subprocess.Popen[bytes] | None) -> None:
    if child is None or child.poll() is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(child.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + STOP_GRACE
        while time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.05)


def uv_environment(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_PREFIXES)}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env["UV_NO_PROGRESS"] = "1"
    env.update(extra)
    return env


def supervised(argv: list[str], env: dict[str, str] | None,
               watchdog: Watchdog | None) -> tuple[int, str]:
    """Run a child in a group of its own, ended with it if the client goes away."""
    child = subprocess.Popen(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True,
    )
    if watchdog is not None:
        watchdog.child = child
    output, _ = child.communicate()
    if watchdog is not None:
        watchdog.child = None
        if watchdog.gone.is_set():
            raise HostError("the client went away", kind="cancelled")
    return child.returncode, output.decode(errors="replace")


def run_uv(uv: str, args: list[str], env: dict[str, str], what: str,
           watchdog: Watchdog | None) -> None:
    returncode, log = supervised([uv, *args], env, watchdog)
    if returncode != 0:
        raise HostError(f"uv {what} failed (exit status {returncode})", log=log)


def materialize(
    *, cache: str, env_id: str, digest: str, lock_text: str, uv: str, python: str,
    wheels: list[dict[str, str]], wheel_dir: str, uv_env: dict[str, str],
    watchdog: Watchdog | None = None, pyc_reuse: str = "",
) -> tuple[str, bool]:
    """The ready environment's interpreter, and whether it was already there."""
    path = env_dir(cache, env_id)
    if ready(cache, env_id):
        return os.path.join(path, "bin", "python"), True
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".lock", "a") as lock_file:  # the same lock packsync's FileLock takes
        fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
        try:
            if ready(cache, env_id):
                return os.path.join(path, "bin", "python"), True
            if os.path.exists(path):
                shutil.rmtree(path)  # the remains of an interrupted build
            try:
                _build(path, digest, lock_text, uv, python, wheels, wheel_dir, uv_env, watchdog,
                       pyc_reuse)
            except BaseException:
                shutil.rmtree(path, ignore_errors=True)
                raise
        finally:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)
    return os.path.join(path, "bin", "python"), False


def _build(path: str, digest: str, lock_text: str, uv: str, python: str,
           wheels: list[dict[str, str]], wheel_dir: str, uv_env: dict[str, str],
           watchdog: Watchdog | None, pyc_reuse: str = "") -> None:
    env = uv_environment(uv_env)
    emit("step", message="creating the environment")
    run_uv(uv, ["venv", "--quiet", "--no-project", "--python", python, path], env, "venv",
           watchdog)
    record = os.path.join(path, RECORD_DIR)
    os.makedirs(os.path.join(record, WHEELS_DIR))
    with open(os.path.join(record, "pylock.toml"), "w", encoding="utf-8") as handle:
        handle.write(lock_text)
    for wheel in wheels:
        source = blob_path(wheel_dir, wheel["sha256"])
        copy_verified(source, wheel["sha256"], os.path.join(record, WHEELS_DIR, wheel["filename"]))
    installed = os.path.join(record, "pylock.toml")
    accepted = lock_for_interpreter(lock_text, venv_version(path))
    if accepted != lock_text:
        installed = os.path.join(record, "pylock.host.toml")
        with open(installed, "w", encoding="utf-8") as handle:
            handle.write(accepted)
    # the byte code of an earlier environment of this Python serves every identical file
    donor = None
    if pyc_reuse:
        reuse = script_functions(pyc_reuse, "pyc_reuse.py")
        donor = reuse["bytecode_donor"](os.path.dirname(path), path, READY_MARKER)
    emit("step", message="installing")
    run_uv(uv, [
        "pip", "sync", "--quiet", *([] if donor else ["--compile-bytecode"]),
        "--preview-features", "pylock", "--python", os.path.join(path, "bin", "python"),
        installed,
    ], env, "pip sync", watchdog)
    if donor:
        emit("step", message=f"byte-compiling, reusing environment {os.path.basename(donor)[:12]}")
        script = os.path.join(record, "pyc_reuse.py")
        with open(script, "w", encoding="utf-8") as handle:
            handle.write(pyc_reuse)
        counts = compile_reusing(path, donor, script, watchdog)
        emit("bytecode", donor=os.path.basename(donor), **counts)
    shutil.rmtree(os.path.join(record, WHEELS_DIR), ignore_errors=True)
    partial = os.path.join(path, READY_MARKER + ".partial")
    with open(partial, "w") as handle:
        handle.write(digest + "\n")
    os.replace(partial, os.path.join(path, READY_MARKER))


def script_functions(source: str, filename: str) -> dict[str, Any]:
    """The functions of a standard-library script received from the client (its
    ``__main__`` block does not run)."""
    namespace: dict[str, Any] = {"__name__": filename.removesuffix(".py")}
    exec(compile(source, filename, "exec"), namespace)
    return namespace


def compile_reusing(path: str, donor: str, script: str,
                    watchdog: Watchdog | None) -> dict[str, int]:
    """Byte-compile the environment at ``path`` with the new interpreter, hard-linking the
    donor's ``.pyc`` of identical files; how many were reused and compiled."""
    returncode, log = supervised([os.path.join(path, "bin", "python"), "-I", script, donor],
                                 None, watchdog)
    if returncode != 0:
        raise HostError(f"byte-compiling failed (exit status {returncode})", log=log)
    try:
        counts = json.loads(log.strip().splitlines()[-1])
        return {"reused": int(counts["reused"]), "compiled": int(counts["compiled"])}
    except (IndexError, ValueError, KeyError, TypeError):
        raise HostError("byte-compiling gave no counts", log=log) from None


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


def unpack_code(cache: str, code_id: str, sha256: str, archive: str) -> str:
    """A code bundle unpacked as ``packsync.codesync.bundle.unpack_code`` does it."""
    target = os.path.join(cache, "code", code_id)
    if code_ready(cache, code_id):
        return target
    os.makedirs(os.path.dirname(target), exist_ok=True)
    staging = tempfile.mkdtemp(dir=os.path.dirname(target), prefix=".unpack-")
    try:
        manifest = {}
        with zipfile.ZipFile(archive) as opened:
            for name in opened.namelist():
                if name.startswith("/") or ".." in name.split("/"):
                    continue
                data = opened.read(name)
                destination = os.path.join(staging, name)
                os.makedirs(os.path.dirname(destination), exist_ok=True)
                with open(destination, "wb") as handle:
                    handle.write(data)
                manifest[name] = hashlib.sha256(data).hexdigest()
        with open(os.path.join(staging, CODE_MANIFEST), "w") as handle:
            json.dump(dict(sorted(manifest.items())), handle, indent=0)
        with open(os.path.join(staging, CODE_READY), "w") as handle:
            handle.write(sha256 + "\n")
        try:
            os.rename(staging, target)
        except OSError:
            if not os.path.exists(os.path.join(target, CODE_READY)):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def make_link(cache: str, code_id: str, link_name: str) -> str:
    """The live code link of one cluster on this host (``$PACKSYNC_CODE_LINK``)."""
    live = os.path.join(cache, "code", "live")
    os.makedirs(live, exist_ok=True)
    target = os.path.join(cache, "code", code_id or "empty")
    if not code_id and not os.path.exists(os.path.join(target, CODE_READY)):
        os.makedirs(target, exist_ok=True)
        with open(os.path.join(target, CODE_MANIFEST), "w") as handle:
            handle.write("{}")
        with open(os.path.join(target, CODE_READY), "w") as handle:
            handle.write("\n")
    link = os.path.join(live, link_name)
    tmp = f"{link}.{os.getpid()}"
    os.symlink(target, tmp)
    os.replace(tmp, link)
    return link


# --- actions ------------------------------------------------------------------------------

def interpreter() -> dict[str, str]:
    return {
        "python_version": platform.python_version(),
        "executable": sys.executable,
        "platform": f"{platform.system()}-{platform.machine()}",
        "home": os.path.expanduser("~"),
    }


def probe(header: dict[str, Any]) -> None:
    cache = cache_root(str(header["cache"]))
    env_id = str(header["env_id"])
    store = str(header.get("store") or os.path.join(cache, "store"))
    code_id = str(header.get("code_id") or "")
    found = {
        **interpreter(),
        "cache": cache,
        "ready": ready(cache, env_id),
        "code_ready": code_ready(cache, code_id),
        "has_uv": os.access(uv_path(cache, str(header["uv_sha256"])), os.X_OK),
        "missing": [s for s in header.get("wheels", []) if not os.path.exists(blob_path(store, s))],
    }
    if found["ready"] and found["code_ready"] and header.get("link"):
        found["link"] = make_link(cache, code_id, str(header["link"]))
    found["env_python"] = os.path.join(env_dir(cache, env_id), "bin", "python")
    emit("probe", **found)


def prepare(header: dict[str, Any], stdin: IO[bytes]) -> None:
    cache = cache_root(str(header["cache"]))
    shared = header.get("store")
    store = str(shared or os.path.join(cache, "store"))
    uv_sha = str(header["uv_sha256"])
    for item in header.get("send", []):
        kind, sha256, size = item["kind"], item["sha256"], int(item["size"])
        if kind == "uv":
            receive(stdin, size, sha256, uv_path(cache, sha256), 0o755)
        else:
            receive(stdin, size, sha256, blob_path(store, sha256))
    for item in header.get("fetch", []):  # presigned URLs: used here, never kept
        kind, sha256 = item["kind"], item["sha256"]
        if kind == "uv":
            download(str(item["url"]), sha256, uv_path(cache, sha256), 0o755)
        else:
            download(str(item["url"]), sha256, blob_path(store, sha256))
    uv = uv_path(cache, uv_sha)
    if not os.access(uv, os.X_OK) and shared:
        copy_verified(blob_path(store, uv_sha), uv_sha, uv, 0o755)
    emit("step", message="received")
    watchdog = Watchdog()
    watchdog.start(stdin)
    python, hit = materialize(
        cache=cache, env_id=str(header["env_id"]), digest=str(header["digest"]),
        lock_text=str(header["lock"]), uv=uv, python=str(header.get("python") or sys.executable),
        wheels=list(header.get("wheels_detail", [])),
        wheel_dir=store, uv_env=dict(header.get("uv_env", {})),
        watchdog=watchdog, pyc_reuse=str(header.get("pyc_reuse") or ""),
    )
    code_id = str(header.get("code_id") or "")
    if code_id:
        code_sha = str(header["code_sha256"])
        unpack_code(cache, code_id, code_sha, blob_path(store, code_sha))
    link = make_link(cache, code_id, str(header["link"])) if header.get("link") else ""
    emit("done", env_python=python, cache_hit=hit, link=link)


def run(header: dict[str, Any], stdin: IO[bytes]) -> int:
    """Start one process in its own group; end the group when stdin closes or on a signal."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
           and not k.startswith(_INDEX_VARIABLES)}
    env.update(header.get("env", {}))
    child = subprocess.Popen(
        list(header["argv"]),
        env=env, cwd=str(header.get("cwd") or os.path.expanduser("~")),
        stdin=subprocess.DEVNULL, stdout=sys.stderr.fileno(), stderr=sys.stderr.fileno(),
        start_new_session=True,
    )
    emit("started", pid=child.pid, pgid=child.pid)
    watchdog = Watchdog()
    watchdog.child = child
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, lambda *_: watchdog.gone.set())
    watchdog.start(stdin)
    while child.poll() is None and not watchdog.gone.is_set():
        time.sleep(0.1)
    kill_group(child)
    try:
        os.killpg(child.pid, signal.SIGKILL)  # the nanny's worker may outlive the nanny
    except (ProcessLookupError, PermissionError):
        pass
    return child.returncode if child.returncode is not None else 0


def cleanup(header: dict[str, Any]) -> None:
    killed = []
    for pgid in header.get("pgids", []):
        try:
            os.killpg(int(pgid), signal.SIGKILL)
            killed.append(pgid)
        except (ProcessLookupError, PermissionError):
            pass
    for link in header.get("links", []):
        try:
            os.unlink(link)
        except FileNotFoundError:
            pass
    emit("cleaned", killed=killed)


def serve(stdin: IO[bytes]) -> int:
    header = json.loads(stdin.readline())
    action = header["action"]
    try:
        if action == "probe":
            probe(header)
        elif action == "prepare":
            prepare(header, stdin)
        elif action == "run":
            return run(header, stdin)
        elif action == "cleanup":
            cleanup(header)
        else:
            raise HostError(f"unknown action {action!r}", kind="protocol")
    except HostError as error:
        emit("error", message=str(error), log="\n".join(error.log.splitlines()[-LOG_LINES:]),
             kind=error.kind)
        return 1
    except Exception as error:  # reported with its type; the client shows it with the host
        emit("error", message=f"{type(error).__name__}: {error}", log="", kind="internal")
        return 1
    return 0


# --- command-line mode: a worker command for batch systems and Kubernetes ------------------

def job_index_environment(indexes: list[str], environ: Any) -> dict[str, str]:
    """uv's view of the named indexes: their URLs, and credentials only from the job itself.

    ``indexes`` are ``NAME=URL`` without userinfo. The job's ``UV_INDEX_<NAME>_USERNAME``
    and ``_PASSWORD`` pass through to uv (they are dropped from everything else it
    inherits); a netrc (``$NETRC`` or ``~/.netrc``) is read by uv as usual.
    """
    if not indexes:
        return {}
    env = {"UV_INDEX": " ".join(indexes)}
    for entry in indexes:
        key = re.sub(r"[^A-Za-z0-9]", "_", entry.split("=", 1)[0]).upper()
        for suffix in ("USERNAME", "PASSWORD"):
            variable = f"UV_INDEX_{key}_{suffix}"
            if variable in environ:
                env[variable] = environ[variable]
    return env


def worker_main(argv: list[str]) -> int:
    """``hostside.py worker --store DIR --lock SHA --uv SHA [--code SHA] -- ARGS``: materialize
    from a shared store, then exec the environment's interpreter with ARGS."""
    parser = argparse.ArgumentParser(prog="packsync-worker")
    parser.add_argument("--store", required=True)
    parser.add_argument("--lock", required=True, help="SHA-256 of the lock in the store")
    parser.add_argument("--uv", required=True, help="SHA-256 of the uv binary in the store")
    parser.add_argument("--code", default="", help="SHA-256 of the code bundle in the store")
    parser.add_argument("--wheels", default="", help="comma-separated FILENAME=SHA256")
    parser.add_argument("--cache", default=os.environ.get("PACKSYNC_CACHE_DIR",
                                                          "~/.cache/packsync"))
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--index", action="append", default=[], metavar="NAME=URL",
                        help="an index whose credentials the job's environment gives uv")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)
    _OUTPUT["events"] = False
    args = options.args[1:] if options.args[:1] == ["--"] else options.args
    store = os.path.abspath(os.path.expanduser(options.store))
    cache = cache_root(options.cache)
    try:
        lock_file = blob_path(store, options.lock)
        if not os.path.exists(lock_file) or sha256_file(lock_file) != options.lock:
            raise HostError(f"lock sha256:{options.lock} is missing or altered in {store}",
                            kind="store")
        with open(lock_file, encoding="utf-8") as handle:
            lock_text = handle.read()
        uv = uv_path(cache, options.uv)
        if not os.access(uv, os.X_OK):
            copy_verified(blob_path(store, options.uv), options.uv, uv, 0o755)
        wheels = [dict(zip(("filename", "sha256"), w.split("=", 1), strict=True))
                  for w in options.wheels.split(",") if w]
        python, _ = materialize(
            cache=cache, env_id=options.lock[:32], digest=options.lock, lock_text=lock_text,
            uv=uv, python=options.python, wheels=wheels, wheel_dir=store,
            uv_env=job_index_environment(options.index, os.environ),
        )
        env = {k: v for k, v in os.environ.items()  # the worker needs no index credential
               if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
               and not k.startswith(_INDEX_VARIABLES)}
        env["PYTHONNOUSERSITE"] = "1"
        if options.code:
            code_dir = unpack_code(cache, options.code[:32], options.code,
                                   blob_path(store, options.code))
            env["PYTHONPATH"] = code_dir
    except HostError as error:
        sys.stderr.write(f"packsync: {error}\n{error.log[-4000:]}")
        return 2
    os.execve(python, [python, *args], env)
    return 0  # pragma: no cover - execve does not return


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        sys.exit(worker_main(sys.argv[2:]))
    sys.exit(serve(sys.stdin.buffer))
