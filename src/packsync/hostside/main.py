"""The host side of packsync: what a machine that runs workers does, with Python alone.

The client runs this package on a host over SSH (``loader.LOADER``: the package's
sources and a JSON header arrive on stdin, so no secret is ever on a command line), or a
batch job runs it from a shared store (``packsync worker-command``). Actions:

* ``probe``: the interpreter and platform, and what the host's cache already holds (one
  round trip on a relaunch: a ready environment is found by its digest);
* ``prepare``: make the environment ready. In artifact mode the environment's archive
  chunks arrive on stdin, from a store (a directory, or presigned URLs), or from another
  host of the same launch, each verified, and are unpacked at the host's own path. In
  index mode uv installs the lock from the package indexes there;
* ``pack``: pack this host's ready environment into an archive in its store (a host that
  built the environment for the others, when the client cannot);
* ``serve``: serve the archive's chunks to the other hosts of this launch until the
  client closes the channel (``peers``);
* ``run``: supervise one Dask process in a process group of its own, ended when the SSH
  channel closes (the client closed, died or lost the host);
* ``cleanup``: end process groups and remove live code links left by a cluster;
* ``worker`` (command-line mode): make the environment ready from a shared store, then
  exec the environment's interpreter with the given arguments.

Every message to the client is one JSON event per line on stdout (``protocol``).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import IO, Any

from packsync.hostside import (
    artifact,
    chunkuse,
    contents,
    install,
    jobreport,
    layout,
    lease,
    lifecycle,
    livecode,
    peers,
    placeholders,
    protocol,
    resources,
    uvconfig,
)
from packsync.hostside.protocol import HostError, emit
from packsync.hostside.supervise import Watchdog, kill_group
from packsync.hostside.transfer import Arrivals, copy_verified, disk_error, download, receive

LOG_LINES = 40
_INDEX_VARIABLES = (  # a long-running process needs no index secret
    "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "UV_INDEX", "UV_DEFAULT_INDEX",
    "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS",
)
_DROPPED = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")


def interpreter() -> dict[str, str]:
    libc, version = platform.libc_ver()
    return {
        "python_version": platform.python_version(),
        "executable": sys.executable,
        "base_executable": getattr(sys, "_base_executable", "") or sys.executable,
        "platform": f"{platform.system()}-{platform.machine()}",
        "libc": f"{libc} {version}".strip(),
        "home": os.path.expanduser("~"),
    }


def _store(header: protocol.Header, cache: str) -> str:
    return str(header.get("store") or os.path.join(cache, "store"))


def probe(header: protocol.Header) -> None:
    cache = layout.cache_root(str(header["cache"]))
    env_id = str(header["env_id"])
    store = _store(header, cache)
    code_id = str(header.get("code_id") or "")
    path = layout.env_dir(cache, env_id)
    ready = contents.examine(path, header.get("digest")) == []
    code_ready = not code_id or layout.is_ready(layout.code_dir(cache, code_id))
    link = ""
    if ready and code_ready and header.get("link"):
        link = livecode.make_link(cache, code_id, str(header["link"]))
    emit(
        "probe", **interpreter(), memory=resources.memory(), cores=resources.cores(),
        cache=cache, ready=ready, code_ready=code_ready,
        has_uv=os.access(layout.uv_path(cache, str(header.get("uv_sha256", "-"))), os.X_OK),
        missing=[s for s in header.get("wheels", [])
                 if not os.path.exists(layout.blob_path(store, s))],
        env_python=layout.env_python(path), link=link,
    )


def _receive_objects(header: protocol.Header, stdin: IO[bytes], cache: str, store: str,
                     landed: Callable[[str, str], None] | None = None) -> int:
    """The objects sent after the header or fetched with presigned URLs, into place (each
    told to ``landed`` as it is); the bytes fetched (what the client sent is not counted)."""
    received = 0
    for item in header.get("send", []):
        sha256, size = item["sha256"], int(item["size"])
        if item["kind"] == "uv":
            receive(stdin, size, sha256, layout.uv_path(cache, sha256), 0o700)
            continue
        receive(stdin, size, sha256, layout.blob_path(store, sha256))
        if landed is not None:
            landed(sha256, layout.blob_path(store, sha256))
    for fetched in header.get("fetch", []):  # presigned URLs: used here, never kept
        sha256 = fetched["sha256"]
        if fetched["kind"] == "uv":
            received += download(fetched["url"], sha256, layout.uv_path(cache, sha256), 0o700)
            continue
        received += download(fetched["url"], sha256, layout.blob_path(store, sha256))
        if landed is not None:
            landed(sha256, layout.blob_path(store, sha256))
    return received


def _fetch_chunks(header: protocol.Header, store: str, arrivals: Arrivals) -> int:
    """The archive chunks that did not arrive with the header: found in the store, or
    fetched from the peer the client named."""
    peer = header.get("peer")
    received = 0
    for chunk in header.get("manifest", {}).get("chunks", []):
        sha256 = str(chunk["sha256"])
        if arrivals.has(sha256):
            continue
        destination = layout.blob_path(store, sha256)
        if os.path.exists(destination):
            if header.get("store") or layout.sha256_file(destination) == sha256:
                arrivals.landed(sha256, destination)  # a store's chunks are checked on use
                continue
            os.unlink(destination)  # a damaged leftover of this machine's: fetched anew
        if peer is None:
            raise HostError(f"chunk sha256:{sha256[:12]} is neither here nor sent",
                            kind="store")
        received += download(peers.chunk_url(peer["url"], sha256), sha256, destination,
                             origin=f"host {peer['name']}", token=peer["token"],
                             size=int(chunk["size"]))
        arrivals.landed(sha256, destination)
    return received


def prepare(header: protocol.Header, stdin: IO[bytes]) -> None:
    cache = layout.cache_root(str(header["cache"]))
    shared = str(header.get("store") or "")
    store = _store(header, cache)
    env_id, digest = str(header["env_id"]), str(header["digest"])
    if header.get("mode", "index") == "artifact":
        chunks = [str(c["sha256"]) for c in header.get("manifest", {}).get("chunks", [])]
        with contextlib.nullcontext() if shared else chunkuse.using(store):
            path, hit, received = _unpack_as_it_arrives(header, stdin, cache, store)
            if header.get("keep_chunks") and not shared:
                chunkuse.keep(store, str(header["token"]), chunks)
        if not header.get("keep_chunks") and not shared:
            chunkuse.release(store, chunks)
    else:
        received = _receive_objects(header, stdin, cache, store)
        emit("received", received=received)
        watchdog = Watchdog()
        watchdog.start(stdin)
        uv = install.trusted_uv(cache, str(header["uv_sha256"]))
        if not os.access(uv, os.X_OK) and shared:
            copy_verified(layout.blob_path(store, str(header["uv_sha256"])),
                          str(header["uv_sha256"]), uv, 0o700)
        python, lock_text = str(header.get("python") or sys.executable), str(header["lock"])

        def build(path: str) -> None:
            install.build_with_uv(
                path, lock_text=lock_text, uv=uv, python=python,
                wheels=[{"filename": w["filename"], "sha256": w["sha256"]}
                        for w in header.get("wheels_detail", [])], wheel_dir=store,
                uv_env=dict(header.get("uv_env", {})), watchdog=watchdog)

        path, hit = install.materialize(cache, env_id, digest, build)
    lifecycle.collect_on_host(cache, header)
    code_id = str(header.get("code_id") or "")
    if code_id:
        _unpack_code(cache, store, code_id, str(header["code_sha256"]))
    link = livecode.make_link(cache, code_id, str(header["link"])) if header.get("link") else ""
    emit("done", env_python=layout.env_python(path), cache_hit=hit, link=link,
         received=received)


def _unpack_as_it_arrives(header: protocol.Header, stdin: IO[bytes], cache: str,
                          store: str) -> tuple[str, bool, int]:
    """The environment unpacked from its archive in a thread of its own, each chunk as soon
    as it landed, while the later ones are still received: the environment's path, whether
    it was ready before, and the bytes fetched. ``received`` is told to the client once
    every chunk is here, so that this host can serve them to others while it unpacks."""
    manifest = artifact.check_manifest(header.get("manifest"), "the manifest")
    arrivals = Arrivals()
    made: dict[str, Any] = {}

    def make() -> None:
        try:
            made["result"] = install.materialize(
                cache, str(header["env_id"]), str(header["digest"]),
                _unpacking(manifest, arrivals.path))
        except BaseException as error:  # handed to the main thread
            made["error"] = error

    maker = threading.Thread(target=make, name="unpack", daemon=True)
    maker.start()
    try:
        received = _receive_objects(header, stdin, cache, store, arrivals.landed)
        received += _fetch_chunks(header, store, arrivals)
    except BaseException as error:
        arrivals.end(error)
        maker.join()
        raise
    arrivals.end()
    emit("received", received=received)
    maker.join()
    if "error" in made:
        raise made["error"]
    path, hit = made["result"]
    return path, hit, received


def _unpack_code(cache: str, store: str, code_id: str, sha256: str) -> str:
    """The code bundle unpacked, from a copy in this machine's own store that was checked
    against its SHA-256 as it was copied (a shared store may change under us)."""
    if layout.is_ready(layout.code_dir(cache, code_id)):
        return layout.code_dir(cache, code_id)
    own = layout.blob_path(os.path.join(cache, "store"), sha256)
    if os.path.abspath(layout.blob_path(store, sha256)) != os.path.abspath(own):
        copy_verified(layout.blob_path(store, sha256), sha256, own)
    elif not os.path.exists(own) or layout.sha256_file(own) != sha256:
        raise HostError(f"code bundle sha256:{sha256} is missing or altered in {store}",
                        kind="integrity")
    return livecode.unpack_code(cache, code_id, sha256, own)


def _unpacking(manifest: dict[str, Any], chunk_file: Callable[[str], str]
               ) -> Callable[[str], None]:
    """How an environment is made from the archive whose chunks ``chunk_file`` finds."""
    info = interpreter()

    def build(path: str) -> None:
        emit("step", message=f"unpacking {manifest['size'] / 1e6:.1f} MB")
        install.install_artifact(
            path, manifest, chunk_file, python=info["base_executable"],
            python_version=info["python_version"], platform=info["platform"])

    return build


def pack_environment(header: protocol.Header) -> None:
    """Pack the ready environment into this host's store, once; its manifest."""
    cache = layout.cache_root(str(header["cache"]))
    store = _store(header, cache)
    env_id = str(header["env_id"])
    path = layout.env_dir(cache, env_id)
    if not layout.is_ready(path):
        raise HostError(f"environment {env_id[:12]} is not ready here to be packed",
                        kind="store")
    record = os.path.join(cache, "artifacts", f"{env_id}.json")
    with install.locked(record + ".lock"):
        manifest = _packed_before(record, store)
        if manifest is None:
            emit("step", message="packing the environment")
            manifest = _pack_into(path, store, env_id, str(header["digest"]))
            with open(record + ".partial", "w", encoding="utf-8") as handle:
                json.dump(manifest, handle)
            os.replace(record + ".partial", record)
    emit("packed", manifest=manifest)


def _packed_before(record: str, store: str) -> dict[str, Any] | None:
    try:
        with open(record, encoding="utf-8") as handle:
            manifest = artifact.check_manifest(json.load(handle), record)
    except (OSError, ValueError, artifact.ArtifactError):
        return None
    chunks = [layout.blob_path(store, str(c["sha256"])) for c in manifest["chunks"]]
    return manifest if all(os.path.exists(c) for c in chunks) else None


def _pack_into(path: str, store: str, env_id: str, digest: str) -> dict[str, Any]:
    os.makedirs(store, mode=0o700, exist_ok=True)
    staging = tempfile.mkdtemp(dir=store, prefix=".pack-")
    try:
        manifest = artifact.pack(path, staging, env_id=env_id, digest=digest,
                                 python=install.venv_version(path),
                                 platform=interpreter()["platform"])
        for chunk in manifest["chunks"]:
            sha256 = str(chunk["sha256"])
            os.makedirs(os.path.dirname(layout.blob_path(store, sha256)), exist_ok=True)
            os.replace(os.path.join(staging, sha256), layout.blob_path(store, sha256))
    except OSError as error:
        raise disk_error(error, store) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def serve_chunks(header: protocol.Header, stdin: IO[bytes]) -> None:
    """Serve this launch's chunks to its other hosts until the client closes the channel."""
    cache = layout.cache_root(str(header["cache"]))
    store = _store(header, cache)
    chunks = {s: layout.blob_path(store, s) for s in header.get("chunks", [])}
    try:
        with chunkuse.using(store):
            missing = [s for s, p in chunks.items() if not os.path.exists(p)]
            if missing:
                raise HostError(f"{len(missing)} chunks to serve are not here", kind="store")
            server = peers.start(peers.own_address(), chunks, str(header["token"]))
            emit("serving", url=server.url)
            try:
                while stdin.read(65536):
                    pass
            finally:
                server.shutdown()
    finally:
        if not header.get("store"):  # a ready environment no longer needs them
            chunkuse.release(store, chunks, launch=str(header["token"]))


def run(header: protocol.Header, stdin: IO[bytes]) -> int:
    """Start one process in its own group; end the group when stdin closes or on a signal."""
    env = {k: v for k, v in os.environ.items()
           if k not in _DROPPED and not k.startswith(_INDEX_VARIABLES)}
    env.update(header.get("env", {}))
    for key, value in header.get("env_defaults", {}).items():
        env.setdefault(key, value)
    payload = base64.b64decode(str(header.get("stdin") or ""))  # the spec: never on a command line
    child = subprocess.Popen(
        list(header["argv"]),
        env=env, cwd=str(header.get("cwd") or os.path.expanduser("~")),
        stdin=subprocess.PIPE if payload else subprocess.DEVNULL,
        stdout=sys.stderr.fileno(), stderr=sys.stderr.fileno(), start_new_session=True,
        pass_fds=lease.inherited(str(header["argv"][0])),
    )
    if child.stdin is not None:
        with contextlib.suppress(BrokenPipeError):
            child.stdin.write(payload)
            child.stdin.close()
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


def cleanup(header: protocol.Header) -> None:
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
    if header.get("chunks"):  # an archive kept for serving that nobody fetched
        store = _store(header, layout.cache_root(str(header["cache"])))
        chunkuse.release(store, header["chunks"], launch=str(header.get("token") or ""))
    emit("cleaned", killed=killed)


def serve(stdin: IO[bytes]) -> int:
    """Run the action the header on ``stdin`` asks for; every failure is an ``error`` event."""
    try:
        header: protocol.Header = json.loads(stdin.readline())
        if header.get("version") != protocol.VERSION:
            raise HostError(f"the client speaks protocol {header.get('version')}, this host "
                            f"side {protocol.VERSION}", kind="protocol")
        action = header["action"]
        if action == "probe":
            probe(header)
        elif action == "prepare":
            prepare(header, stdin)
        elif action == "pack":
            pack_environment(header)
        elif action == "serve":
            serve_chunks(header, stdin)
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

def job_index_environment(indexes: list[str], environ: Any, lock_text: str = "") -> dict[str, str]:
    """uv's view of the named indexes: their URLs, and credentials only from the job itself.

    ``indexes`` are ``NAME=URL`` without userinfo. The job's ``UV_INDEX_<NAME>_USERNAME``
    and ``_PASSWORD`` pass through to uv (they are dropped from everything else it
    inherits), else the ``machine`` line of the index's host in the job's netrc
    (``$NETRC`` or ``~/.netrc``). uv reads no netrc itself, whose ``default`` entry it
    would send to every index, unless ``$PACKSYNC_NETRC_DEFAULT`` is true. A URL whose
    token the worker command holds as a placeholder (``{packsync-secret:corp-1}``) is
    read whole from the job's ``UV_INDEX_<NAME>_URL`` (packsync's variable, not uv's), and
    the tokens in it fill in the placeholders of ``lock_text``; a job that lacks it while
    the lock needs it is refused, naming the variable.
    """
    if not indexes:
        return {}
    env: dict[str, str] = {}
    entries: list[str] = []
    tokens: dict[str, str] = {}
    needed = set(placeholders.labels_in(lock_text))
    machines = _netrc_machines(environ)
    for entry in indexes:
        name, _, url = entry.partition("=")
        prefix = uvconfig.index_prefix(name)
        for suffix in ("USERNAME", "PASSWORD"):
            variable = f"{prefix}{suffix}"
            if variable in environ:
                env[variable] = environ[variable]
        found = machines.get(urllib.parse.urlsplit(url).hostname or "")
        if found is not None and not any(k.startswith(prefix) for k in env):
            login, _, secret = found
            env[f"{prefix}USERNAME"] = login or ""
            env[f"{prefix}PASSWORD"] = secret or ""
        labels = placeholders.labels_in(url)
        variable = f"{prefix}URL"
        live = str(environ.get(variable, ""))
        if not labels:
            entries.append(entry)
            continue
        if not live:
            if not needed & set(labels):
                continue  # the lock has nothing from it
            raise HostError(f"the index {name} ({url}) has an access token in its URL, which "
                            f"packsync does not hand to jobs: set {variable} to the index's "
                            "full URL in the job's environment", kind="credentials")
        values = placeholders.values_from(url, live)
        if values is None:
            raise HostError(f"{variable} is not a URL of the index {name}: it must read {url} "
                            "with the token in place of each placeholder", kind="credentials")
        tokens.update(values)
        entries.append(f"{name}={live}")
    if entries:
        env["UV_INDEX"] = " ".join(entries)
    if tokens:
        env[placeholders.VARIABLE] = json.dumps(tokens)
    if netrc_default_asked(str(environ.get("PACKSYNC_NETRC_DEFAULT", ""))):
        env["NETRC"] = _netrc_path(environ)  # uv reads it whole, as the job asked
    else:
        env["NETRC"] = os.devnull
    return env


def netrc_default_asked(value: str) -> bool:
    """``$PACKSYNC_NETRC_DEFAULT`` says yes."""
    return value.strip().lower() in ("1", "true", "yes", "on")


def _netrc_machines(environ: Any) -> dict[str, tuple[str, str | None, str]]:
    """The ``machine`` lines of the job's netrc, by host (never its ``default`` entry)."""
    import netrc

    try:
        hosts = netrc.netrc(_netrc_path(environ)).hosts
    except (OSError, netrc.NetrcParseError):
        return {}
    return {host: entry for host, entry in hosts.items() if host != "default"}


def _netrc_path(environ: Any) -> str:
    return os.path.expanduser(str(
        environ.get("NETRC") or os.path.join(environ.get("HOME") or "~", ".netrc")))


def _verified_text(store: str, sha256: str, what: str) -> str:
    """An object of the store read once, and used only if those bytes have its hash."""
    try:
        with open(layout.blob_path(store, sha256), "rb") as handle:
            data = handle.read()
    except OSError:
        data = b""
    if hashlib.sha256(data).hexdigest() != sha256:
        raise HostError(f"{what} sha256:{sha256} is missing or altered in {store}",
                        kind="store")
    return data.decode("utf-8")


def worker_main(argv: list[str]) -> int:
    """``worker --store DIR --lock SHA (--artifact SHA | --uv SHA) [--code SHA] -- ARGS``:
    make the environment ready from a shared store, then exec its interpreter with ARGS.

    A failure is written to stderr and, with ``--report KEY``, into the store for the
    client (``jobreport``). With ``--link NAME`` the processes import the code through a
    live link of that name, which the client's ``sync()`` swaps to newer code."""
    parser = argparse.ArgumentParser(prog="packsync-worker")
    parser.add_argument("--store", required=True)
    parser.add_argument("--lock", required=True, help="SHA-256 of the lock in the store")
    parser.add_argument("--artifact", default="", help="SHA-256 of the environment's manifest")
    parser.add_argument("--uv", default="", help="SHA-256 of the uv binary (index mode)")
    parser.add_argument("--code", default="", help="SHA-256 of the code bundle in the store")
    parser.add_argument("--wheels", default="", help="comma-separated FILENAME=SHA256")
    parser.add_argument("--cache", default=os.environ.get("PACKSYNC_CACHE_DIR",
                                                          "~/.cache/packsync"))
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--index", action="append", default=[], metavar="NAME=URL",
                        help="an index whose credentials the job's environment gives uv")
    parser.add_argument("--index-options", default="",
                        help="SHA-256 of uv's per-index settings (JSON) in the store")
    parser.add_argument("--report", default="", help="key of the failure reports in the store")
    parser.add_argument("--link", default="", help="name of the cluster's live code link")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)
    protocol.OUTPUT["events"] = False
    args = options.args[1:] if options.args[:1] == ["--"] else options.args
    store = os.path.abspath(os.path.expanduser(options.store))
    cache = layout.cache_root(options.cache)
    try:
        lock_text = _verified_text(store, options.lock, "lock")
        if options.artifact:
            build = _unpacking(artifact.check_manifest(
                json.loads(_verified_text(store, options.artifact, "environment manifest")),
                f"manifest sha256:{options.artifact[:12]}"),
                lambda sha: layout.blob_path(store, sha))
        else:
            uv = install.trusted_uv(cache, options.uv)
            if not os.access(uv, os.X_OK):
                copy_verified(layout.blob_path(store, options.uv), options.uv, uv, 0o700)
            wheels = [dict(zip(("filename", "sha256"), w.split("=", 1), strict=True))
                      for w in options.wheels.split(",") if w]

            def build(path: str) -> None:
                uv_env = job_index_environment(options.index, os.environ, lock_text)
                if options.index_options:  # uv's per-index settings, no secret in them
                    uv_env[uvconfig.VARIABLE] = _verified_text(
                        store, options.index_options, "index settings")
                install.build_with_uv(
                    path, lock_text=lock_text, uv=uv, python=options.python, wheels=wheels,
                    wheel_dir=store, uv_env=uv_env)

        path, _ = install.materialize(cache, options.lock[:32], options.lock, build)
        lifecycle.collect_on_host(cache)
        env = {k: v for k, v in os.environ.items()  # the worker needs no index credential
               if k not in _DROPPED and not k.startswith(_INDEX_VARIABLES)}
        env["PYTHONNOUSERSITE"] = "1"
        # a job's directory (often the user's, on a shared filesystem) must not shadow the
        # code bundle: Python puts it first on sys.path for -m and -c unless told not to
        env["PYTHONSAFEPATH"] = "1"
        if options.code:
            try:
                env["PYTHONPATH"] = _unpack_code(cache, store, options.code[:32], options.code)
            except HostError as error:
                raise HostError(f"code bundle sha256:{options.code} is missing or altered in "
                                f"{store}: {error}", kind="store") from None
        if options.link:
            link = livecode.held_link(cache, options.code[:32], options.link)
            env["PYTHONPATH"] = env[layout.CODE_LINK_VARIABLE] = link
    except (HostError, artifact.ArtifactError) as error:
        return _job_failed(options, store, str(error), getattr(error, "log", ""),
                           getattr(error, "kind", "materialize"))
    except OSError as error:  # the cache: unwritable, full, or not a directory
        failure = disk_error(error, error.filename or cache)
        return _job_failed(options, store, str(failure), "", failure.kind)
    except ValueError as error:
        return _job_failed(options, store, f"bad worker command arguments: {error}", "",
                           "arguments")
    python = layout.env_python(path)
    lease.keep_across_exec(path)
    os.execve(python, [python, *args], env)
    return 0  # pragma: no cover - execve does not return


def _job_failed(options: argparse.Namespace, store: str, message: str, log: str,
                kind: str) -> int:
    """Say why in a report the client reads from the store, then on stderr; exit status 2."""
    if options.report:
        args = options.args[1:] if options.args[:1] == ["--"] else options.args
        jobreport.write_failure(store, options.report, kind=kind, message=message, log=log,
                                args=args, environ=os.environ)
    sys.stderr.write(f"packsync: {message}\n{log[-4000:]}")
    return 2


def main(argv: list[str]) -> int:
    if argv[:1] == ["worker"]:
        return worker_main(argv[1:])
    return serve(sys.stdin.buffer)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
