"""Working-directory code as its own content-addressed bundle, outside the environment digest.

Editing a script changes the bundle, never the environment: the environment stays a
cache hit and only the (small) bundle travels again. A bundle is a deterministic
zip, so the same files always give the same digest.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from packsync.progress import NullReporter, Reporter, stage
from packsync.scan.workdir import CodeFile, collect_code
from packsync.store import Store, sha256_file

_EPOCH = (1980, 1, 1, 0, 0, 0)
_READY = ".packsync-ready"


@dataclass(frozen=True, kw_only=True, slots=True)
class CodeBundle:
    """A stored bundle of code files, named by the SHA-256 of its zip."""

    sha256: str
    files: tuple[str, ...]

    @property
    def code_id(self) -> str:
        return self.sha256[:32]


def publish_code(
    roots: Iterable[str], *, store: Store, reporter: Reporter | None = None
) -> CodeBundle | None:
    """Bundle the importable code of ``roots`` (first root wins a name) into the store."""
    reporter = reporter or NullReporter()
    with stage(reporter, "code") as current:
        chosen: dict[str, CodeFile] = {}
        for root in roots:
            for file in collect_code(root):
                chosen.setdefault(file.relpath, file)
        if not chosen:
            current.detail = "no working-directory code"
            return None
        with tempfile.TemporaryDirectory(prefix="packsync-code-") as tmp:
            archive = Path(tmp) / "code.zip"
            with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
                for relpath in sorted(chosen):
                    info = zipfile.ZipInfo(relpath, date_time=_EPOCH)
                    info.external_attr = 0o644 << 16
                    info.compress_type = zipfile.ZIP_DEFLATED
                    bundle.writestr(info, Path(chosen[relpath].path).read_bytes())
            sha256 = sha256_file(archive)
            uploaded = store.put(archive, sha256)
        current.detail = f"{len(chosen)} files, {'stored' if uploaded else 'unchanged'}"
        return CodeBundle(sha256=sha256, files=tuple(sorted(chosen)))


def unpack_code(bundle: CodeBundle, *, store: Store, cache: Path) -> Path:
    """The bundle's files in ``<cache>/code/<code_id>``, unpacked once and reused."""
    target = cache / "code" / bundle.code_id
    if (target / _READY).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".unpack-"))
    try:
        archive = staging / "code.zip"
        store.fetch(bundle.sha256, archive)
        with zipfile.ZipFile(archive) as opened:
            for name in opened.namelist():
                if name.startswith("/") or ".." in Path(name).parts:
                    continue
                opened.extract(name, staging)
        archive.unlink()
        (staging / _READY).write_text(bundle.sha256 + "\n")
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / _READY).exists():  # not a concurrent unpack that won the race
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
