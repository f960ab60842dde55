"""Wheels of local code, built on the client and put in the store.

Editable, local-directory and Git installs become wheels here, so hosts never need
the source tree or the Git server. A wheel is keyed by a hash of its source: an
unchanged project is neither rebuilt nor uploaded again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from filelock import FileLock
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from packsync.errors import BuildError, tail
from packsync.model import (
    ArchiveSource,
    Artifact,
    Decision,
    DirectorySource,
    EditableSource,
    Plan,
    VcsSource,
)
from packsync.progress import NullReporter, Reporter, stage
from packsync.scan.dists import file_url_to_path
from packsync.store import Store, sha256_file
from packsync.uvtool import run_uv

logger = logging.getLogger(__name__)

_SKIPPED_DIRS = frozenset(
    {".git", ".hg", ".svn", "__pycache__", ".venv", ".tox", ".nox", "node_modules",
     ".mypy_cache", ".pytest_cache", ".ruff_cache", ".eggs"}
)
_BUILD_OUTPUTS = frozenset({"build", "dist"})  # only at the top of a project


def build_local_code(
    plan: Plan,
    *,
    store: Store,
    cache: Path,
    uv_env: Mapping[str, str] | None = None,
    reporter: Reporter | None = None,
) -> dict[str, Artifact]:
    """A stored wheel for every decision that needs one, keyed by distribution name."""
    reporter = reporter or NullReporter()
    artifacts: dict[str, Artifact] = {}
    todo = plan.local_code()
    with stage(reporter, "build", f"{len(todo)} local packages") as current:
        built = 0
        for decision in todo:
            artifact, fresh = _artifact_for(decision, store, cache, uv_env or {}, reporter)
            artifacts[decision.key] = artifact
            built += fresh
        current.detail = f"{built} built, {len(todo) - built} unchanged"
    return artifacts


def _artifact_for(
    decision: Decision, store: Store, cache: Path, uv_env: Mapping[str, str], reporter: Reporter
) -> tuple[Artifact, bool]:
    source = decision.source
    if isinstance(source, ArchiveSource) and source.url.endswith(".whl"):
        return _stored_wheel(decision, Path(file_url_to_path(source.url)), store), False
    key = _source_key(decision)
    records = cache / "builds"
    records.mkdir(parents=True, exist_ok=True)
    record = records / f"{key}.json"
    with FileLock(str(records / f"{key}.lock")):
        known = _read_record(record)
        if known is not None and store.has(known.sha256):
            return known, False
        reporter.step("build", f"building {decision.name}")
        with tempfile.TemporaryDirectory(prefix="packsync-build-") as tmp:
            wheel = _build_wheel(decision, Path(tmp), uv_env)
            artifact = _stored_wheel(decision, wheel, store)
        record.write_text(json.dumps(artifact.to_dict()))
        return artifact, True


def _stored_wheel(decision: Decision, wheel: Path, store: Store) -> Artifact:
    if not wheel.is_file():
        raise BuildError(
            f"{decision.name} was installed from {wheel}, which no longer exists",
            package=decision.name,
            path=str(wheel),
            hint=f"reinstall {decision.name} or leave it out with ignore=[{decision.name!r}]",
        )
    try:
        name, version, _, _ = parse_wheel_filename(wheel.name)
    except InvalidWheelFilename as error:
        raise BuildError(
            f"{wheel.name} is not a valid wheel file name", package=decision.name, path=str(wheel)
        ) from error
    sha256 = sha256_file(wheel)
    expected = getattr(decision.source, "sha256", "")
    if expected and expected != sha256:
        raise BuildError(
            f"{wheel} is not the file {decision.name} was installed from (its hash differs)",
            package=decision.name,
            path=str(wheel),
            hint=f"reinstall {decision.name} from this file, or restore the original file",
        )
    store.put(wheel, sha256)
    return Artifact(name=str(name), version=str(version), filename=wheel.name, sha256=sha256)


def _source_key(decision: Decision) -> str:
    source = decision.source
    if isinstance(source, VcsSource) and source.commit:
        material = f"vcs\0{source.url}\0{source.commit}"
    elif isinstance(source, (EditableSource, DirectorySource)):
        material = "tree\0" + tree_hash(Path(source.path), decision.name)
    elif isinstance(source, ArchiveSource):
        material = "archive\0" + sha256_file(Path(file_url_to_path(source.url)))
    else:
        raise BuildError(
            f"{decision.name} was installed from {source.kind} without a commit to build",
            package=decision.name,
            hint=f"reinstall {decision.name} from a specific commit",
        )
    return hashlib.sha256(material.encode()).hexdigest()


def tree_hash(root: Path, package: str = "") -> str:
    """A hash of a source tree's file names and contents.

    Inside a Git work tree the files are those Git would consider (tracked, or untracked
    and not ignored), so ``.gitignore`` is honoured; build outputs, VCS folders and
    environments are skipped in any case.
    """
    if not root.is_dir():
        raise BuildError(
            f"the source directory of {package or root} is gone: {root}",
            package=package,
            path=str(root),
            hint="restore the directory, reinstall the package, or ignore it",
        )
    digest = hashlib.sha256()
    for relpath in _source_files(root):
        digest.update(os.fsencode(relpath) + b"\0")
        digest.update(sha256_file(root / relpath).encode())
    return digest.hexdigest()


def _source_files(root: Path) -> list[str]:
    try:
        listed = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others",
             "--exclude-standard", "--", "."],
            capture_output=True,
            check=False,
        )
    except OSError:  # no git on this machine
        listed = subprocess.CompletedProcess([], 1, b"", b"")
    if listed.returncode == 0:
        names = [os.fsdecode(n) for n in listed.stdout.split(b"\0") if n]
        return sorted(n for n in names if not _skipped(Path(n)) and (root / n).is_file())
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        top = Path(dirpath) == root
        dirnames[:] = [
            d for d in dirnames
            if not _skipped(Path(d))
            and not (top and d in _BUILD_OUTPUTS)
            and not _is_environment(Path(dirpath, d))
        ]
        found += [str(Path(dirpath, f).relative_to(root)) for f in filenames
                  if not _skipped(Path(f))]
    return sorted(found)


def _skipped(relpath: Path) -> bool:
    return any(part in _SKIPPED_DIRS or part.endswith(".egg-info") for part in relpath.parts) or (
        relpath.suffix in (".pyc", ".pyo")
    )


def _is_environment(path: Path) -> bool:
    return (path / "pyvenv.cfg").exists() or (path / "conda-meta").is_dir()


def _build_wheel(decision: Decision, out: Path, uv_env: Mapping[str, str]) -> Path:
    source = decision.source
    if isinstance(source, VcsSource):
        project = out / "checkout"
        _checkout(decision, source, project)
    elif isinstance(source, (EditableSource, DirectorySource)):
        project = Path(source.path)
    elif isinstance(source, ArchiveSource):
        project = Path(file_url_to_path(source.url))
    else:  # pragma: no cover - plan never asks
        raise BuildError(f"nothing to build for {decision.name}", package=decision.name)
    wheels = out / "wheels"
    result = run_uv(["build", "--wheel", "--out-dir", str(wheels), str(project)], extra_env=uv_env)
    found = sorted(wheels.glob("*.whl")) if wheels.is_dir() else []
    if result.returncode != 0 or len(found) != 1:
        raise BuildError(
            f"building a wheel of {decision.name} from {project} failed",
            package=decision.name,
            path=str(project),
            log_tail=tail(result.stdout),
            hint="fix the build (the log above is uv's), or leave the package out with "
            f"ignore=[{decision.name!r}]",
        )
    return found[0]


def _checkout(decision: Decision, source: VcsSource, into: Path) -> None:
    if source.vcs != "git":
        raise BuildError(
            f"{decision.name} comes from {source.vcs}, and only Git sources can be built",
            package=decision.name,
        )
    revision = source.commit or source.requested_revision
    steps = [["git", "clone", "--quiet", source.url, str(into)]]
    if revision:
        steps.append(["git", "-C", str(into), "checkout", "--quiet", revision])
    for step in steps:
        result = subprocess.run(step, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise BuildError(
                f"could not fetch {decision.name} from {source.url} at {revision or 'HEAD'}",
                package=decision.name,
                path=source.url,
                log_tail=tail(result.stderr),
                hint="check that this machine can reach the repository and the commit exists",
            )


def _read_record(path: Path) -> Artifact | None:
    try:
        return Artifact.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError):
        return None
