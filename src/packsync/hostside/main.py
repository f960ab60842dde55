"""The host side of packsync: what a machine that runs workers does, with Python alone.

The client runs this package on a host over SSH (``loader.LOADER``: the package's
sources and a JSON header arrive on stdin, so no secret is ever on a command line), or a
batch job runs it from a shared store (``packsync worker-command``). Actions:

* ``probe``: the interpreter and platform, and what the host's cache already holds (one
  round trip on a relaunch: a ready environment is found by its digest);
* ``prepare``: make the environment ready (``prepare``);
* ``pack``: pack this host's ready environment into an archive in its store (a host that
  built the environment for the others, when the client cannot: ``sharing``);
* ``serve``: serve the archive's chunks to the other hosts of this launch until the
  client closes the channel (``sharing``);
* ``run``: supervise one Dask process in a process group of its own, ended when the SSH
  channel closes (the client closed, died or lost the host);
* ``cleanup``: end process groups and remove live code links left by a cluster;
* ``worker`` (command-line mode): make the environment ready from a shared store, then
  exec the environment's interpreter with the given arguments (``jobs``).

Each action runs in a process of its own, and Python's start-up is on the path of every
launch: an action imports only the modules it needs (``run`` and ``probe`` need few).
Every message to the client is one JSON event per line on stdout (``protocol``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from typing import IO

from packsync.hostside import chunkuse, contents, layout, lease, livecode, protocol, resources
from packsync.hostside.protocol import HostError, emit
from packsync.hostside.supervise import Watchdog, kill_group, process_environment

LOG_LINES = 40


def probe(header: protocol.Header) -> None:
    cache = layout.cache_root(str(header["cache"]))
    env_id = str(header["env_id"])
    store = layout.store_root(header.get("store"), cache)
    code_id = str(header.get("code_id") or "")
    path = layout.env_dir(cache, env_id)
    ready = contents.examine(path, header.get("digest")) == []
    code_ready = not code_id or layout.is_ready(layout.code_dir(cache, code_id))
    link = ""
    if ready and code_ready and header.get("link"):
        link = livecode.make_link(cache, code_id, str(header["link"]))
    emit(
        "probe", **resources.interpreter(), memory=resources.memory(), cores=resources.cores(),
        cache=cache, ready=ready, code_ready=code_ready,
        has_uv=os.access(layout.uv_path(cache, str(header.get("uv_sha256", "-"))), os.X_OK),
        missing=[s for s in header.get("wheels", [])
                 if not os.path.exists(layout.blob_path(store, s))],
        env_python=layout.env_python(path), link=link,
    )


def run(header: protocol.Header, stdin: IO[bytes]) -> int:
    """Start one process in its own group; end the group when stdin closes or on a signal."""
    env = process_environment(os.environ)
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
        store = layout.store_root(header.get("store"),
                                 layout.cache_root(str(header["cache"])))
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
            from packsync.hostside import prepare

            prepare.prepare(header, stdin)
        elif action == "pack":
            from packsync.hostside import sharing

            sharing.pack_environment(header)
        elif action == "serve":
            from packsync.hostside import sharing

            sharing.serve_chunks(header, stdin)
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


def main(argv: list[str]) -> int:
    if argv[:1] == ["worker"]:
        from packsync.hostside import jobs

        return jobs.worker_main(argv[1:])
    return serve(sys.stdin.buffer)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
