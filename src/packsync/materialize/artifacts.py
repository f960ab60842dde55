"""A built environment as an archive in the store: packed once, unpacked by every host.

Hosts and batch jobs unpack this archive instead of installing from the package indexes,
so index load and the client's uplink do not grow with the cluster, and machines that
cannot reach an index (or a Git server, or the internet) run workers all the same. The
archive of an environment is packed once per cache: a relaunch finds it by the
environment's id and only checks that the store still holds its objects.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packsync.errors import MaterializeError
from packsync.hostside import artifact, install
from packsync.lock.lockfile import Lock
from packsync.materialize.environments import Environment
from packsync.progress import NullReporter, Reporter, stage
from packsync.store import Store, sha256_file

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True, slots=True)
class Artifact:
    """An environment's archive in the store: its manifest, and the manifest's SHA-256."""

    manifest: dict[str, Any] = field(repr=False, hash=False, compare=False)
    sha256: str

    @property
    def chunks(self) -> tuple[str, ...]:
        return tuple(str(c["sha256"]) for c in self.manifest["chunks"])

    @property
    def size(self) -> int:
        return int(self.manifest["size"])


def builder_platform() -> str:
    """This machine as the host side names platforms (``Linux-x86_64``)."""
    return f"{platform.system()}-{platform.machine()}"


def environment_artifact(
    environment: Environment,
    lock: Lock,
    *,
    store: Store,
    cache: Path,
    workers_platform: str,
    reporter: Reporter | None = None,
) -> Artifact:
    """The archive of ``environment`` in ``store``, packed now unless it is there already."""
    reporter = reporter or NullReporter()
    _check_builder(lock, workers_platform)
    record = cache / "artifacts" / f"{lock.env_id}.json"
    with stage(reporter, "pack", lock.env_id[:12]) as current:
        found = _recorded(record, store)
        if found is not None:
            current.detail = "packed before"
            return found
        record.parent.mkdir(parents=True, exist_ok=True)
        with install.locked(str(record) + ".lock"):
            found = _recorded(record, store)
            if found is None:
                found = _pack(environment, lock, store, record)
        current.detail = f"{len(found.chunks)} chunks, {found.size / 1e6:.1f} MB"
        return found


def _check_builder(lock: Lock, workers_platform: str) -> None:
    here = builder_platform()
    if here.lower() != workers_platform.lower():
        raise MaterializeError(
            f"this machine ({here}) cannot build the environment of {workers_platform} workers",
            digest=lock.digest,
            hint="launch from a machine of the workers' platform, or use host_install='index'",
        )


def _recorded(record: Path, store: Store) -> Artifact | None:
    """The archive packed before, if the store still holds all of it (each use recorded)."""
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
        manifest = artifact.check_manifest(data["manifest"], str(record))
        found = Artifact(manifest=manifest, sha256=str(data["sha256"]))
    except (OSError, ValueError, KeyError, TypeError, artifact.ArtifactError):
        return None
    if all(store.touch(s) for s in (found.sha256, *found.chunks)):
        return found
    return None


def _pack(environment: Environment, lock: Lock, store: Store, record: Path) -> Artifact:
    config = environment.path / "pyvenv.cfg"
    if config.exists() and "relocatable = true" not in config.read_text(encoding="utf-8"):
        raise MaterializeError(
            f"environment {lock.env_id[:12]} was built before environments were relocatable, "
            "and cannot be shipped to other machines as it is",
            path=str(environment.path), digest=lock.digest,
            hint=f"remove {environment.path} so that the next launch builds it again",
        )
    with tempfile.TemporaryDirectory(prefix="packsync-pack-", dir=record.parent) as tmp:
        try:
            manifest = artifact.pack(
                str(environment.path), tmp, env_id=lock.env_id, digest=lock.digest,
                python=lock.python, platform=builder_platform(),
            )
        except OSError as error:
            raise MaterializeError(
                f"packing environment {lock.env_id[:12]} failed: {error.strerror or error}",
                path=error.filename or tmp, digest=lock.digest,
                hint="free space in the cache directory, or set PACKSYNC_CACHE_DIR",
            ) from None
        for chunk in manifest["chunks"]:
            store.put(Path(tmp) / chunk["sha256"], chunk["sha256"])
        manifest_path = Path(tmp) / "manifest.json"
        manifest_path.write_bytes(artifact.manifest_bytes(manifest))
        sha256 = sha256_file(manifest_path)
        store.put(manifest_path, sha256)
        partial = record.with_suffix(".partial")
        partial.write_text(json.dumps({"sha256": sha256, "manifest": manifest}),
                           encoding="utf-8")
        os.replace(partial, record)
    logger.info("environment %s packed: %d chunks, %.1f MB (%.1f MB unpacked)", lock.env_id[:12],
                len(manifest["chunks"]), manifest["size"] / 1e6, manifest["raw_size"] / 1e6)
    return Artifact(manifest=manifest, sha256=sha256)

