"""Working-directory code as its own content-addressed bundle, outside the environment digest.

Editing a script changes the bundle, never the environment: the environment stays a
cache hit and only the (small) bundle travels again. A bundle is a deterministic
zip, so the same files always give the same digest; each unpacked bundle is a
directory named by it, holding a manifest (file -> SHA-256) so that a later version
can reuse its unchanged files and a live update sends only what changed.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from dask.utils import parse_bytes

from packsync import config
from packsync.errors import ScanError
from packsync.hostside import layout, livecode
from packsync.progress import NullReporter, Reporter, stage
from packsync.scan.workdir import CodeFile, CodeRules, check_size, walk_code
from packsync.store import Store, sha256_file

_EPOCH = (1980, 1, 1, 0, 0, 0)
READY = layout.CODE_READY
MANIFEST = layout.CODE_MANIFEST

@dataclass(frozen=True, kw_only=True, slots=True)
class CodeBundle:
    """A stored bundle of code files, named by the SHA-256 of its zip."""

    sha256: str
    files: tuple[str, ...]
    manifest: tuple[tuple[str, str], ...] = ()  # (relpath, sha256 of its content), sorted

    @property
    def code_id(self) -> str:
        return self.sha256[:32]


def code_rules(
    *,
    include: Iterable[str] | str | None = None,
    exclude: Iterable[str] | str | None = None,
    max_size: str | int | None = None,
) -> CodeRules:
    """Rules from the arguments given, the rest from Dask config ``packsync.include``,
    ``packsync.exclude`` and ``packsync.max-code-size`` (bytes or ``"100MB"``)."""
    chosen_size = max_size if max_size is not None else config.max_code_size()
    try:
        max_bytes = int(parse_bytes(chosen_size))
    except (ValueError, TypeError) as error:
        raise ScanError(
            f"{chosen_size!r} is not a size",
            hint="give packsync.max-code-size as bytes or a size such as '100MB'",
        ) from error
    return CodeRules(
        include=_globs(include if include is not None else config.include()),
        exclude=_globs(exclude if exclude is not None else config.exclude()),
        max_bytes=max_bytes,
    )


def collect_files(roots: Iterable[str], rules: CodeRules) -> dict[str, CodeFile]:
    """The files of all roots, by relative path (the first root wins a name), size-checked."""
    chosen: dict[str, CodeFile] = {}
    roots = tuple(roots)
    for root in roots:
        for file in walk_code(root, rules):
            chosen.setdefault(file.relpath, file)
    check_size(list(chosen.values()), rules.max_bytes, where=", ".join(roots))
    return chosen


def read_files(files: Mapping[str, CodeFile]) -> dict[str, bytes]:
    """Each file's bytes, read once so that hash, bundle and update agree."""
    contents: dict[str, bytes] = {}
    for relpath, file in files.items():
        try:
            contents[relpath] = Path(file.path).read_bytes()
        except FileNotFoundError:
            continue  # deleted since the walk: it is simply not part of this version
    return contents


def manifest_of(contents: Mapping[str, bytes]) -> dict[str, str]:
    return {rel: hashlib.sha256(data).hexdigest() for rel, data in sorted(contents.items())}


def store_bundle(contents: Mapping[str, bytes], *, store: Store) -> tuple[CodeBundle, bool]:
    """Zip ``contents`` deterministically into the store; the bundle, and whether it was new."""
    with tempfile.TemporaryDirectory(prefix="packsync-code-") as tmp:
        archive = Path(tmp) / "code.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
            for relpath in sorted(contents):
                info = zipfile.ZipInfo(relpath.replace(os.sep, "/"), date_time=_EPOCH)
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                bundle.writestr(info, contents[relpath])
        sha256 = sha256_file(archive)
        uploaded = store.put(archive, sha256)
    manifest = tuple(manifest_of(contents).items())
    return CodeBundle(sha256=sha256, files=tuple(sorted(contents)), manifest=manifest), uploaded


def publish_code(
    roots: Iterable[str],
    *,
    store: Store,
    reporter: Reporter | None = None,
    rules: CodeRules | None = None,
) -> CodeBundle | None:
    """Bundle the code of ``roots`` (first root wins a name) into the store.

    ``rules`` default to the Dask config (``packsync.include``, ``packsync.exclude``).
    """
    reporter = reporter or NullReporter()
    rules = rules or code_rules()
    with stage(reporter, "code") as current:
        contents = read_files(collect_files(roots, rules))
        if not contents:
            current.detail = "no working-directory code"
            return None
        bundle, uploaded = store_bundle(contents, store=store)
        current.detail = f"{len(contents)} files, {'stored' if uploaded else 'unchanged'}"
        return bundle


def unpack_code(bundle: CodeBundle, *, store: Store, cache: Path) -> Path:
    """The bundle's files in ``<cache>/code/<code_id>``, unpacked once and reused, as every
    host unpacks them (``packsync.hostside.livecode``)."""
    target = Path(layout.code_dir(str(cache), bundle.code_id))
    if layout.is_ready(str(target)):  # a use: old versions nobody used are pruned
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fetch-") as tmp:
        archive = Path(tmp) / "code.zip"
        store.fetch(bundle.sha256, archive)  # verified against its SHA-256
        return Path(livecode.unpack_code(str(cache), bundle.code_id, bundle.sha256,
                                         str(archive)))


def _globs(value: Iterable[str] | str | None) -> tuple[str, ...]:
    """Globs from an argument or config value (a comma-separated string works too)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return tuple(str(v) for v in value)
