"""A worker command for any Dask deployer (dask-jobqueue, dask-kubernetes, a shell job).

``worker_command(store=DIR)`` locks this environment, puts everything a machine needs
into ``DIR`` (a shared filesystem: the lock, local wheels, the code bundle, the uv
binary and packsync's standard-library host script, each named by its SHA-256) and
returns a command that behaves like a Python interpreter: run as
``COMMAND -m distributed.cli.dask_worker tcp://...`` on any machine that sees ``DIR``,
it materializes the environment into that machine's cache (once; later jobs find it
with one ``stat``) and then execs the environment's own interpreter with the same
arguments. The machine needs Python of the client's major.minor, not packsync.
"""

from __future__ import annotations

import os
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path

from packsync.codebundle import publish_code
from packsync.errors import StoreError
from packsync.hosts.hostside import blob_path
from packsync.hosts.ssh import hostside_script
from packsync.lock import Lock
from packsync.model import PlanOptions
from packsync.pipeline import lock_environment
from packsync.progress import Reporter
from packsync.store import LocalStore, Store, sha256_file
from packsync.uvtool import uv_binary


@dataclass(frozen=True, kw_only=True, slots=True)
class WorkerCommand:
    """A command prefix to use where a deployer expects the workers' Python interpreter."""

    argv: tuple[str, ...]
    lock: Lock
    store: str

    @property
    def python(self) -> str:
        """The prefix as one shell string (dask-jobqueue's ``python=``)."""
        return shlex.join(self.argv)

    def dask_worker(self, scheduler: str, *args: str) -> tuple[str, ...]:
        """The full command of one worker (a Kubernetes container's ``command``)."""
        return (*self.argv, "-m", "distributed.cli.dask_worker", scheduler, *args)


def worker_command(
    *,
    store: str | os.PathLike[str],
    python: str = "python3",
    host_cache_dir: str | None = None,
    options: PlanOptions | None = None,
    cache: str | os.PathLike[str] | None = None,
    reporter: Reporter | None = None,
) -> WorkerCommand:
    """Lock this environment into the shared directory ``store``; the command that uses it.

    ``python`` is the interpreter name or path on the worker machines (same
    major.minor as here); ``host_cache_dir`` their cache (default
    ``$PACKSYNC_CACHE_DIR`` there, else ``~/.cache/packsync``).
    """
    directory = os.path.abspath(os.fspath(store))
    if "://" in os.fspath(store):
        raise StoreError(
            f"worker commands read the store as a directory; {store} is not one",
            path=str(store),
            hint="give a directory every worker machine mounts (NFS, a cluster filesystem)",
        )
    locked = lock_environment(options=options, cache=cache, store=directory, reporter=reporter)
    target = locked.store
    if not isinstance(target, LocalStore):  # pragma: no cover - a directory gives a LocalStore
        raise StoreError(f"{directory} did not open as a directory store", path=directory)
    lock = locked.lock
    code = publish_code(locked.snapshot.code_paths, store=target, reporter=reporter)
    script_sha = _put_bytes(target, hostside_script())
    _put_bytes(target, lock.text.encode())
    uv = Path(uv_binary())
    uv_sha = sha256_file(uv)
    target.put(uv, uv_sha)
    argv = [
        python, blob_path(directory, script_sha), "worker",
        "--store", directory, "--lock", lock.digest, "--uv", uv_sha,
    ]
    if code is not None:
        argv += ["--code", code.sha256]
    if lock.local_wheels:
        argv += ["--wheels", ",".join(f"{w.filename}={w.sha256}" for w in lock.local_wheels)]
    if host_cache_dir:
        argv += ["--cache", host_cache_dir]
    argv.append("--")
    return WorkerCommand(argv=tuple(argv), lock=lock, store=directory)


def _put_bytes(store: Store, data: bytes) -> str:
    with tempfile.TemporaryDirectory(prefix="packsync-put-") as tmp:
        path = Path(tmp) / "object"
        path.write_bytes(data)
        sha256 = sha256_file(path)
        store.put(path, sha256)
    return sha256
