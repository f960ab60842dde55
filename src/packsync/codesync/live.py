"""The client side of live code sync: what changed since the last sync, and sending only that.

``LiveCode`` owns one cluster's live link (``<cache>/code/live/<pid>-<id>``, the
``PYTHONPATH`` of its processes) and the manifest of the version it last synced.
``sync`` stores the new bundle (so a host that lacks the old version can fetch it),
applies the update on the scheduler and registers it as a worker plugin: running
workers apply it at once, workers that join later when they register.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudpickle
from distributed.protocol import pickle as dask_pickle

from packsync.codesync import plugin as codeplugin
from packsync.codesync.bundle import (
    READY,
    CodeBundle,
    collect_files,
    manifest_of,
    read_files,
    store_bundle,
)
from packsync.codesync.plugin import (
    CodeSyncPlugin,
    CodeUpdate,
    apply_on_scheduler,
    plugin_name,
)
from packsync.config import store_expiry
from packsync.errors import SyncError
from packsync.hostside import layout, livecode
from packsync.hostside.buildlock import alive
from packsync.scan.workdir import CodeRules, walk_code
from packsync.store import Store

logger = logging.getLogger(__name__)

# Workers may not have packsync installed (``only=``, ``ignore=``): the plugin travels by value.
cloudpickle.register_pickle_by_value(codeplugin)

_EMPTY = layout.EMPTY_CODE


@dataclass(frozen=True, kw_only=True, slots=True)
class SyncResult:
    """What one ``Cluster.sync()`` did."""

    code_id: str
    sent: tuple[str, ...]  # files whose bytes were sent (new or changed)
    deleted: tuple[str, ...]
    workers: int  # workers that applied the update now (later ones apply it on joining)
    seconds: float

    @property
    def changed(self) -> bool:
        return bool(self.sent or self.deleted)


class LiveCode:
    """One cluster's working-directory code: its live link and the last synced version."""

    def __init__(
        self,
        *,
        roots: Sequence[str],
        rules: CodeRules,
        store: Store,
        cache: Path,
        bundle: CodeBundle | None,
        version_dir: Path | None,
    ) -> None:
        self.roots = tuple(roots)
        self.rules = rules
        self.store = store
        self.code_root = cache / "code"
        self.bundle = bundle
        self.manifest: dict[str, str] = dict(bundle.manifest) if bundle else {}
        self.launch_manifest = dict(self.manifest)
        self.code_id = bundle.code_id if bundle else _EMPTY
        self.plugin_name = plugin_name()  # this cluster's own
        live = self.code_root / "live"
        live.mkdir(parents=True, exist_ok=True)
        _remove_dead_links(live)
        _prune_versions(self.code_root, store_expiry())
        self.link = live / f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        empty = livecode.empty_version(str(self.code_root.parent))
        os.symlink(version_dir or empty, self.link)
        self._fingerprint: tuple[tuple[str, int, int], ...] | None = None

    def fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        """Names, sizes and mtimes of the files that would travel: cheap enough to poll."""
        seen: dict[str, tuple[str, int, int]] = {}
        for root in self.roots:
            for file in walk_code(root, self.rules):
                seen.setdefault(file.relpath, (file.relpath, file.size, file.mtime_ns))
        return tuple(sorted(seen.values()))

    def touched(self) -> bool:
        """Whether a file was added, removed or saved since the last call (True the first time)."""
        current = self.fingerprint()
        touched = current != self._fingerprint
        self._fingerprint = current
        return touched

    def next_update(self) -> CodeUpdate | None:
        """The update from the last synced version to the files as they are; None if equal."""
        contents = read_files(collect_files(self.roots, self.rules))
        manifest = manifest_of(contents)
        if manifest == self.manifest:
            return None
        if contents:
            bundle, _ = store_bundle(contents, store=self.store)
            code_id, sha256 = bundle.code_id, bundle.sha256
        else:
            code_id, sha256 = _EMPTY, ""
        changed = {
            p: contents[p] for p, digest in manifest.items() if self.manifest.get(p) != digest
        }
        since_launch = {
            p: contents[p] for p, digest in manifest.items()
            if self.launch_manifest.get(p) != digest and p not in changed
        }
        return CodeUpdate(
            code_id=code_id,
            sha256=sha256,
            manifest=manifest,
            files=changed,
            since_launch=since_launch,
            base=self.code_id,
            store_url=self.store.url,
        )

    def commit(self, update: CodeUpdate) -> None:
        self.manifest = dict(update.manifest)
        self.code_id = update.code_id

    async def push(
        self, update: CodeUpdate, scheduler_comm: Any, *, on_scheduler: bool = True
    ) -> SyncResult:
        """Apply ``update`` on every worker (present and future), and on the scheduler
        unless ``on_scheduler`` is False (a scheduler in the client process)."""
        start = time.perf_counter()
        plugin = CodeSyncPlugin(update, name=self.plugin_name)
        on_workers = scheduler_comm.register_worker_plugin(
            plugin=dumps(plugin), name=plugin.name, idempotent=False
        )
        if on_scheduler:
            applied, workers = await asyncio.gather(
                scheduler_comm.run_function(
                    function=dumps(apply_on_scheduler),
                    args=dumps((update,)),
                    kwargs=dumps({}),
                    wait=True,
                ),
                on_workers,
            )
        else:
            applied, workers = {"status": "OK"}, await on_workers
        failures = [("scheduler", applied)] if applied.get("status") == "error" else []
        failures += [(w, r) for w, r in workers.items() if r.get("status") == "error"]
        if failures:
            where, response = failures[0]
            raise SyncError(
                f"code version {update.code_id[:12]} could not be applied on {where}"
                f" ({len(failures)} processes failed): {response.get('exception_text', '')}",
                host=str(where),
                log_tail=str(response.get("traceback_text") or ""),
                hint="the processes keep their previous code; fix the cause and sync again",
            )
        deleted = tuple(sorted(set(self.manifest) - set(update.manifest)))
        self.commit(update)
        return SyncResult(
            code_id=update.code_id,
            sent=tuple(sorted(update.files)),
            deleted=deleted,
            workers=len(workers),
            seconds=time.perf_counter() - start,
        )

    def close(self) -> None:
        try:
            os.unlink(self.link)
        except FileNotFoundError:
            pass


def dumps(value: object) -> bytes:
    """Dask's pickling (cloudpickle for what is registered by value)."""
    data: bytes = dask_pickle.dumps(value)  # type: ignore[no-untyped-call]
    return data



def _remove_dead_links(live: Path) -> None:
    """Links of clusters whose client process is gone (a crash skips ``close``)."""
    for entry in live.iterdir():
        pid = entry.name.split("-", 1)[0]
        if not pid.isdigit() or alive(int(pid), ""):
            continue
        try:
            if entry.is_symlink() or entry.is_file():
                entry.unlink()
            else:
                shutil.rmtree(entry, ignore_errors=True)
        except FileNotFoundError:
            pass


def _prune_versions(code_root: Path, expiry: float) -> None:
    """Remove code versions unused for ``expiry`` seconds that no live link points at.

    Every sync makes a version (``watch=True``: every save); they are small, as
    unchanged files are hard links, but they would pile up. A version's use is the
    mtime of its ready marker (set when made, touched when a launch reuses it).
    """
    linked = {os.path.realpath(link) for link in (code_root / "live").iterdir()}
    cutoff = time.time() - expiry
    for version in code_root.iterdir():
        if version.name in ("live", _EMPTY) or version.name.startswith("."):
            continue
        try:
            if (version / READY).stat().st_mtime >= cutoff or str(version) in linked:
                continue
        except FileNotFoundError:
            continue  # being unpacked, or not a version
        shutil.rmtree(version, ignore_errors=True)

