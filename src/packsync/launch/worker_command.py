"""A worker command for any Dask deployer (dask-jobqueue, dask-kubernetes, a shell job).

``worker_command(store=DIR)`` locks this environment, puts everything a machine needs
into ``DIR`` (a shared filesystem: the lock, local wheels, the code bundle, the uv
binary and packsync's standard-library host script, each named by its SHA-256) and
returns a command that behaves like a Python interpreter: run as
``COMMAND -m distributed.cli.dask_worker tcp://...`` on any machine that sees ``DIR``,
it materializes the environment into that machine's cache (once; later jobs find it
with one ``stat``) and then execs the environment's own interpreter with the same
arguments. The machine needs Python of the client's major.minor, not packsync.

Index credentials never go into the store or the command: the command names each
index that needed credentials here (its URL without userinfo, and a uv index name),
and the job's own environment authenticates to it, as uv does: the deployer sets
``UV_INDEX_<NAME>_USERNAME``/``_PASSWORD`` (a Kubernetes secret, a batch job's
environment) or gives the machine a netrc. The Dask worker it then starts does not
inherit those variables.
"""

from __future__ import annotations

import os
import re
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from packsync.codesync.bundle import publish_code
from packsync.errors import StoreError
from packsync.launch.hosts.hostside import blob_path
from packsync.launch.hosts.ssh import hostside_script
from packsync.lock.lockfile import Lock
from packsync.model import PlanOptions
from packsync.pipeline import lock_environment
from packsync.progress import Reporter
from packsync.scan.indexes import IndexSettings
from packsync.store import LocalStore, Store, sha256_file
from packsync.uvtool import uv_binary


@dataclass(frozen=True, kw_only=True, slots=True)
class JobIndex:
    """An index the workers' machines must authenticate to themselves."""

    name: str  # uv's index name: the variables are UV_INDEX_<NAME>_USERNAME / _PASSWORD
    url: str  # without userinfo

    @property
    def variables(self) -> tuple[str, str]:
        """The environment variables a job sets to give uv this index's credentials."""
        key = re.sub(r"[^A-Za-z0-9]", "_", self.name).upper()
        return f"UV_INDEX_{key}_USERNAME", f"UV_INDEX_{key}_PASSWORD"


@dataclass(frozen=True, kw_only=True, slots=True)
class WorkerCommand:
    """A command prefix to use where a deployer expects the workers' Python interpreter."""

    argv: tuple[str, ...]
    lock: Lock
    store: str
    indexes: tuple[JobIndex, ...] = ()  # each needs credentials from the job's environment

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
    indexes = job_indexes(locked.settings)
    for index in indexes:
        argv += ["--index", f"{index.name}={index.url}"]
    argv.append("--")
    return WorkerCommand(argv=tuple(argv), lock=lock, store=directory, indexes=indexes)


def job_indexes(settings: IndexSettings) -> tuple[JobIndex, ...]:
    """The indexes that needed credentials here, named as uv names them, minus the secrets.

    A named uv index keeps its name; any other is named after its host
    (``pkgs.example.com`` -> ``pkgs-example-com``), so a deployer knows which
    ``UV_INDEX_<NAME>_*`` variables to set.
    """
    found: list[JobIndex] = []
    for index in settings.indexes:
        if index.role not in ("default", "extra") or not index.url.startswith(("http://",
                                                                               "https://")):
            continue
        if settings.credentials(index) is None:
            continue
        name = index.name or re.sub(r"[^a-z0-9]+", "-", urlsplit(index.url).hostname or "")
        name = name.strip("-") or "index"
        taken = {i.name for i in found}
        unique, number = name, 2
        while unique in taken:
            unique, number = f"{name}-{number}", number + 1
        found.append(JobIndex(name=unique, url=index.plain_url))
    return tuple(found)


def _put_bytes(store: Store, data: bytes) -> str:
    with tempfile.TemporaryDirectory(prefix="packsync-put-") as tmp:
        path = Path(tmp) / "object"
        path.write_bytes(data)
        sha256 = sha256_file(path)
        store.put(path, sha256)
    return sha256
