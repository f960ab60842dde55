"""The ``prepare`` action: the environment made ready on this machine, and the code.

In artifact mode the archive's chunks arrive on stdin, from a store (a directory, or
presigned URLs), or from another host of the same launch, each verified, and are
unpacked at this machine's own path while the later ones still arrive. In index mode
uv installs the lock from the package indexes here.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable
from typing import IO, Any

from packsync.hostside import (
    artifact,
    chunkuse,
    install,
    layout,
    lifecycle,
    livecode,
    peers,
    protocol,
    resources,
)
from packsync.hostside.protocol import HostError, emit
from packsync.hostside.supervise import Watchdog
from packsync.hostside.transfer import Arrivals, copy_verified, download, receive


def prepare(header: protocol.Header, stdin: IO[bytes]) -> None:
    cache = layout.cache_root(str(header["cache"]))
    shared = str(header.get("store") or "")
    store = layout.store_root(header.get("store"), cache)
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
        unpack_code(cache, store, code_id, str(header["code_sha256"]))
    link = livecode.make_link(cache, code_id, str(header["link"])) if header.get("link") else ""
    emit("done", env_python=layout.env_python(path), cache_hit=hit, link=link,
         received=received)


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
                unpacking(manifest, arrivals.path))
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


def unpack_code(cache: str, store: str, code_id: str, sha256: str) -> str:
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


def unpacking(manifest: dict[str, Any], chunk_file: Callable[[str], str]
              ) -> Callable[[str], None]:
    """How an environment is made from the archive whose chunks ``chunk_file`` finds."""
    info = resources.interpreter()

    def build(path: str) -> None:
        emit("step", message=f"unpacking {manifest['size'] / 1e6:.1f} MB")
        install.install_artifact(
            path, manifest, chunk_file, python=info["base_executable"],
            python_version=info["python_version"], platform=info["platform"])

    return build
