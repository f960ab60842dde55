"""Giving this machine's environment to others: ``pack`` makes an archive of it in this
host's store (a host that built it for the others), ``serve`` serves the archive's
chunks to the other hosts of a launch until the client closes the channel (``peers``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import IO, Any

from packsync.hostside import artifact, chunkuse, install, layout, peers, protocol, resources
from packsync.hostside.protocol import HostError, emit
from packsync.hostside.transfer import disk_error


def pack_environment(header: protocol.Header) -> None:
    """Pack the ready environment into this host's store, once; its manifest."""
    cache = layout.cache_root(str(header["cache"]))
    store = layout.store_root(header.get("store"), cache)
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
                                 platform=resources.interpreter()["platform"])
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
    store = layout.store_root(header.get("store"), cache)
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
