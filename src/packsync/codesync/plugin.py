"""The host side of live code sync: a new code version, made importable in a running process.

Every Dask process imports working-directory code through a *live link*
(``$PACKSYNC_CODE_LINK``, on its ``PYTHONPATH``): a symlink to a version directory
``<cache>/code/<code_id>`` named by the bundle's digest. An update brings the new
version's manifest and the bytes of the files that changed; the host builds the new
version beside the old one (unchanged files hard-linked, changed ones written, any
missing one fetched from the store), marks it ready, and swaps the link atomically.
A process the nanny restarts, or a worker that joins later, starts on the link and so
on the current version.

In the running process, the modules whose files changed (and the user modules that
hold names from them) leave ``sys.modules``: the next task that unpickles a function
``helpers.f`` by reference imports the new ``helpers``. Unchanged modules stay, so
objects already in memory keep their classes.

This module needs only the standard library and ``distributed``: the client pickles
it by value, so it works on workers whose environment lacks packsync.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import linecache
import logging
import os
import secrets
import shutil
import sys
import tempfile
import types
import uuid
import zipfile
from dataclasses import dataclass, field
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from packsync.hostside import layout

logger = logging.getLogger("packsync.codesync.plugin")

PLUGIN_NAME = "packsync-code"
LINK_VARIABLE = layout.CODE_LINK_VARIABLE
# values captured when this module is pickled by value: workers need no packsync
READY = layout.CODE_READY
MANIFEST = layout.CODE_MANIFEST
_STATE_MODULE = "_packsync_code_state"  # survives by-value unpickling: one per process


@dataclass(frozen=True, kw_only=True, slots=True)
class CodeUpdate:
    """A code version: its manifest, and the bytes of the files new since ``base``."""

    code_id: str
    sha256: str
    manifest: dict[str, str]  # relpath -> SHA-256 of the content, every file of the version
    files: dict[str, bytes]  # relpath -> content, only the files ``base`` lacks
    # relpath -> content of the other files changed since the launch: a host that missed
    # earlier syncs (no worker there then) builds the version from the launch's files
    since_launch: dict[str, bytes] = field(default_factory=dict)
    base: str  # the code_id the client last synced
    store_url: str  # where the whole bundle is, for a host that has neither version


@dataclass(frozen=True, kw_only=True, slots=True)
class Applied:
    """What applying an update did in one process."""

    code_id: str
    written: tuple[str, ...]  # files written from the update's bytes (empty: already on disk)
    fetched: bool  # the bundle had to be fetched from the store
    dropped: tuple[str, ...]  # modules removed from sys.modules


def plugin_name() -> str:
    """A name for one cluster's plugin (``packsync-code-<random>``): a peer that does not
    know it cannot register a plugin of its own in its place."""
    return f"{PLUGIN_NAME}-{secrets.token_hex(12)}"


class CodeSyncPlugin(WorkerPlugin):
    """Applies the current code version on every worker, present and future."""

    name = PLUGIN_NAME
    idempotent = False

    def __init__(self, update: CodeUpdate, *, name: str = PLUGIN_NAME) -> None:
        self.update = update
        self.name = name
        self.applied: Applied | None = None

    def setup(self, worker: Any) -> None:
        self.applied = apply_update(self.update)


def apply_on_scheduler(update: CodeUpdate, dask_scheduler: Any = None) -> dict[str, Any]:
    """``run_function`` entry point: the scheduler unpickles user code in graphs too."""
    applied = apply_update(update)
    return {"code_id": applied.code_id, "dropped": list(applied.dropped)}


def apply_update(update: CodeUpdate, *, link: str | None = None) -> Applied:
    """Make ``update`` the code this host imports, and this process's next imports see it."""
    _check_names(update)
    link = link or os.environ.get(LINK_VARIABLE, "")
    if not link or not os.path.islink(link):
        raise RuntimeError(
            f"this process has no live code link (${LINK_VARIABLE}={link!r}): "
            "it was not started by packsync.Cluster"
        )
    code_root = os.path.dirname(os.path.dirname(link))
    target = os.path.join(code_root, update.code_id)
    linked = os.path.realpath(link)
    written: tuple[str, ...] = ()
    fetched = False
    if not os.path.exists(os.path.join(target, READY)):
        sources = (linked, _sibling(target, update.base))
        written, fetched = _build_version(update, target, sources=sources)
    if linked != os.path.realpath(target):
        _swap_link(link, target)
    dropped = _forget_changed_modules(update, link=link, code_root=code_root)
    return Applied(code_id=update.code_id, written=written, fetched=fetched, dropped=dropped)


def _check_names(update: CodeUpdate) -> None:
    """Refuse an update that would write anywhere but inside its own version directory."""
    for name in (update.code_id, update.base):
        if name and (name in (".", "..") or "/" in name or "\\" in name or "\0" in name):
            raise ValueError(f"code update {update.code_id!r}: {name!r} is not a version name")
    for relpath in update.manifest:
        parts = relpath.split("/")
        if (relpath.startswith("/") or "\\" in relpath or "\0" in relpath or relpath in (
                READY, MANIFEST) or any(p in ("", ".", "..") for p in parts)):
            raise ValueError(f"code update {update.code_id}: {relpath!r} is not a file of the "
                             "code directory")


def _sibling(target: str, code_id: str) -> str:
    return os.path.join(os.path.dirname(target), code_id) if code_id else ""


def read_manifest(version_dir: str) -> dict[str, str] | None:
    """A ready version's manifest (hashed from its files if it predates manifests)."""
    if not version_dir or not os.path.exists(os.path.join(version_dir, READY)):
        return None
    try:
        with open(os.path.join(version_dir, MANIFEST), encoding="utf-8") as handle:
            loaded: dict[str, str] = json.load(handle)
            return loaded
    except FileNotFoundError:
        pass
    manifest = {}
    for dirpath, _, filenames in os.walk(version_dir):
        for filename in filenames:
            path = os.path.join(dirpath, filename)
            relpath = os.path.relpath(path, version_dir).replace(os.sep, "/")
            if relpath in (READY, MANIFEST) or "__pycache__" in relpath.split("/"):
                continue
            with open(path, "rb") as handle:
                manifest[relpath] = hashlib.sha256(handle.read()).hexdigest()
    return manifest


def _build_version(
    update: CodeUpdate, target: str, *, sources: tuple[str, ...]
) -> tuple[tuple[str, ...], bool]:
    """Assemble the version in a staging directory, then rename it into place."""
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(dir=parent, prefix=".sync-")
    written: list[str] = []
    fetched = False
    try:
        known = [(s, m) for s in sources if (m := read_manifest(s)) is not None]
        missing: list[str] = []
        for relpath, sha256 in sorted(update.manifest.items()):
            destination = os.path.join(staging, relpath)
            os.makedirs(os.path.dirname(destination), exist_ok=True)
            data = update.files.get(relpath)
            if data is not None and hashlib.sha256(data).hexdigest() == sha256:
                _write(destination, data)
                written.append(relpath)
                continue
            source = next((s for s, m in known if m.get(relpath) == sha256), None)
            if source is not None:
                _link_or_copy(os.path.join(source, relpath), destination)
                continue
            data = update.since_launch.get(relpath)
            if data is not None and hashlib.sha256(data).hexdigest() == sha256:
                _write(destination, data)
                continue
            missing.append(relpath)
        if missing:
            _fetch_missing(update, staging, missing)
            fetched = True
        _write(os.path.join(staging, MANIFEST), json.dumps(update.manifest, indent=0).encode())
        _write(os.path.join(staging, READY), (update.sha256 + "\n").encode())
        try:
            os.rename(staging, target)
        except OSError:
            if not os.path.exists(os.path.join(target, READY)):  # not a concurrent winner
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return tuple(written), fetched


def _fetch_missing(update: CodeUpdate, staging: str, missing: list[str]) -> None:
    """A host without the previous version gets the whole bundle from the store."""
    try:
        from packsync.store import open_store
    except ImportError as error:
        raise RuntimeError(
            f"code version {update.code_id} needs {len(missing)} files this host does not "
            f"have (first: {missing[0]}), and packsync is not installed here to fetch them "
            f"from {update.store_url}"
        ) from error
    from pathlib import Path

    archive = staging + ".zip"
    try:
        open_store(update.store_url).fetch(update.sha256, Path(archive))
        with zipfile.ZipFile(archive) as opened:
            for relpath in missing:
                data = opened.read(relpath)
                if hashlib.sha256(data).hexdigest() != update.manifest[relpath]:
                    raise RuntimeError(f"{relpath} in bundle {update.sha256} is not as listed")
                _write(os.path.join(staging, relpath), data)
    finally:
        if os.path.exists(archive):
            os.unlink(archive)


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


def _link_or_copy(source: str, destination: str) -> None:
    """Versions share unchanged files; nothing writes into a ready version, so links are safe."""
    try:
        os.link(source, destination)
    except OSError:
        shutil.copyfile(source, destination)


def _swap_link(link: str, target: str) -> None:
    """Point the live link at ``target`` in one rename: a reader sees the old or the new."""
    tmp = f"{link}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    os.symlink(target, tmp)
    try:
        os.replace(tmp, link)
    except OSError:
        os.unlink(tmp)
        raise


def _state() -> dict[str, Any]:
    """Per-process state, kept where a fresh by-value copy of this module finds it."""
    module = sys.modules.get(_STATE_MODULE)
    if module is None:
        module = sys.modules.setdefault(_STATE_MODULE, types.ModuleType(_STATE_MODULE))
    return vars(module)


def changed_files(before: dict[str, str] | None, after: dict[str, str]) -> set[str]:
    if before is None:
        return set(after)
    return {p for p in set(before) | set(after) if before.get(p) != after.get(p)}


def _forget_changed_modules(update: CodeUpdate, *, link: str, code_root: str) -> tuple[str, ...]:
    """Drop the modules of changed files (and user modules holding names from them)."""
    state = _state()
    previous = state.get("code_id")
    if previous == update.code_id:
        return ()
    # A process that never applied an update started on the version of its launch or of
    # the last sync; either way the files the update sends are the ones that may differ.
    before = read_manifest(os.path.join(code_root, previous)) if previous else None
    if before is None and not previous:
        before = read_manifest(os.path.join(code_root, update.base)) if update.base else None
    changed = changed_files(before, update.manifest) if before is not None else set(update.files)
    names = {_module_name(p) for p in changed if p.endswith(".py")}
    names.discard("")
    prefixes = (link + os.sep, code_root + os.sep)
    user = {
        name: module
        for name, module in list(sys.modules.items())
        if _loaded_from(module, prefixes)
    }
    dropped = {n for n in user if any(n == m or n.startswith(m + ".") for m in names)}
    grew = True
    while grew:  # `from helpers import f` in another user module holds the old f
        grew = False
        for name, module in user.items():
            if name not in dropped and _holds_names_from(module, dropped):
                dropped.add(name)
                grew = True
    for name in dropped:
        sys.modules.pop(name, None)
    importlib.invalidate_caches()
    for path in [p for p in sys.path_importer_cache if p.startswith(prefixes) or p == link]:
        sys.path_importer_cache.pop(path, None)
    linecache.checkcache()
    state["code_id"] = update.code_id
    if dropped:
        logger.info("code %s: reloading %s", update.code_id[:12], ", ".join(sorted(dropped)))
    return tuple(sorted(dropped))


def _loaded_from(module: types.ModuleType, prefixes: tuple[str, ...]) -> bool:
    """Imported through the live link (``PYTHONPATH``): no ``realpath``, it costs ~30 ms."""
    path = getattr(module, "__file__", None)
    return isinstance(path, str) and path.startswith(prefixes)


def _holds_names_from(module: types.ModuleType, dropped: set[str]) -> bool:
    for value in list(vars(module).values()):
        try:
            origin = value.__name__ if isinstance(value, types.ModuleType) else getattr(
                value, "__module__", None
            )
        except Exception:  # an object with a strange __getattr__ is not a reference
            continue
        if origin in dropped:
            return True
    return False


def _module_name(relpath: str) -> str:
    parts = relpath.replace(os.sep, "/")[: -len(".py")].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts) if all(p.isidentifier() for p in parts) else ""
