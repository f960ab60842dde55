"""Wheels of local code, built on the client and put in the store.

Editable, local-directory and Git installs become wheels here, so hosts never need
the source tree or the Git server (Git is reached with the client's own credentials).
A wheel is keyed by what it is made from (a source tree's hash, a commit, an
installed ``RECORD``): an unchanged project is neither rebuilt nor uploaded again.
When the source is not what was installed (a non-editable directory, since changed)
or cannot be had (a Git server down, a commit gone), a pure-Python install is
repacked from its installed files instead, which is faithful to what runs here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import (
    InvalidWheelFilename,
    parse_wheel_filename,
)

from packsync.build.git import Unreachable, checkout, installed_credentials, resolve_revision
from packsync.build.repack import (
    NotFaithful,
    installed_dist_info,
    record_key,
    record_mismatches,
    repack,
    wheel_filename_from_zip,
    wheel_identity,
)
from packsync.build.treehash import tree_hash
from packsync.errors import BuildError, tail
from packsync.model import Artifact, Decision, Interpreter, Plan, Snapshot, Target
from packsync.progress import NullReporter, Reporter, stage
from packsync.redact import redact_text
from packsync.scan.dists import file_url_to_path
from packsync.sources import ArchiveSource, DirectorySource, EditableSource, VcsSource
from packsync.store import Store, sha256_file
from packsync.uv_errors import scrubbed_tail
from packsync.uvtool import run_uv

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True, slots=True)
class _Context:
    store: Store
    cache: Path
    uv_env: Mapping[str, str] = field(repr=False)  # index credentials: memory only
    reporter: Reporter
    target: Target
    client: Interpreter
    snapshot: Snapshot | None


def build_local_code(
    plan: Plan,
    *,
    store: Store,
    cache: Path,
    uv_env: Mapping[str, str] | None = None,
    reporter: Reporter | None = None,
    snapshot: Snapshot | None = None,
) -> dict[str, Artifact]:
    """A stored wheel for every decision that needs one, keyed by distribution name.

    ``snapshot`` (the one the plan was made from) locates the installed files, for
    the checks and repacks that need them; without it those are skipped.
    """
    reporter = reporter or NullReporter()
    if snapshot is not None:
        client = snapshot.interpreter
    else:
        from packsync.scan import current_interpreter

        client = current_interpreter()
    context = _Context(store=store, cache=cache, uv_env=uv_env or {}, reporter=reporter,
                       target=plan.target, client=client, snapshot=snapshot)
    artifacts: dict[str, Artifact] = {}
    todo = plan.local_code()
    with stage(reporter, "build", f"{len(todo)} local packages") as current:
        built = 0
        for decision in todo:
            artifact, fresh = _artifact_for(decision, context)
            artifacts[decision.key] = artifact
            built += fresh
        current.detail = f"{built} built, {len(todo) - built} unchanged"
    return artifacts


def _dist_info(decision: Decision, context: _Context) -> Path | None:
    if context.snapshot is None:
        return None
    dist = context.snapshot.get(decision.name)
    if dist is None or not dist.location:
        return None
    return installed_dist_info(Path(dist.location), decision.name, dist.version)


def _artifact_for(decision: Decision, context: _Context) -> tuple[Artifact, bool]:
    source = decision.source
    dist_info = _dist_info(decision, context)
    if isinstance(source, ArchiveSource) and source.url.endswith(".whl"):
        wheel = Path(file_url_to_path(source.url))
        return _stored_wheel(decision, wheel, context.store, dist_info=dist_info), False
    repacked = isinstance(source, DirectorySource) and _faithful(dist_info)
    if repacked and dist_info is not None:
        key = _hash("record", record_key(dist_info))
    else:
        key = _source_key(decision, context)
    records = context.cache / "builds"
    records.mkdir(parents=True, exist_ok=True)
    record = records / f"{key}.json"
    known = _read_record(record)  # written by a rename: whole or absent, no lock needed
    if known is not None and context.store.touch(known.sha256):
        return known, False
    from filelock import FileLock  # a build only: a relaunch stops above

    with FileLock(str(records / f"{key}.lock")):
        known = _read_record(record)
        if known is not None and context.store.touch(known.sha256):
            return known, False
        with tempfile.TemporaryDirectory(prefix="packsync-build-") as tmp:
            out = Path(tmp)
            if repacked and dist_info is not None:
                context.reporter.step("build", f"repacking the installed {decision.name}")
                wheel = _repack(decision, dist_info, out, why="")
            else:
                context.reporter.step("build", f"building {decision.name}")
                wheel = _build_wheel(decision, out, context, dist_info)
            _check_platform(decision, wheel, context)
            artifact = _stored_wheel(decision, wheel, context.store)
        partial = record.with_suffix(".partial")
        partial.write_text(json.dumps(artifact.to_dict()))
        partial.replace(record)
        return artifact, True


def _faithful(dist_info: Path | None) -> bool:
    if dist_info is None:
        return False
    try:
        wheel_identity(dist_info)
    except NotFaithful:
        return False
    return True


def _repack(decision: Decision, dist_info: Path, out: Path, *, why: str) -> Path:
    try:
        return repack(dist_info, out)
    except NotFaithful as error:
        raise BuildError(
            f"{decision.name} cannot be repacked from its installed files: {error}"
            + (f" ({why})" if why else ""),
            package=decision.name,
            path=str(dist_info),
            hint=f"reinstall {decision.name}, or leave it out with ignore=[{decision.name!r}]",
        ) from error


def _check_platform(decision: Decision, wheel: Path, context: _Context) -> None:
    """Compiled local code runs only where it was built: refuse it for another platform."""
    try:
        _, _, _, tags = parse_wheel_filename(wheel.name)
    except InvalidWheelFilename:
        return
    if all(tag.platform == "any" for tag in tags):
        return
    client, target = context.client, context.target
    same_python = client.version.split(".")[:2] == target.python.split(".")[:2] or (
        not target.python
    )
    if client.platform == target.platform and same_python:
        return
    raise BuildError(
        f"{decision.name} has compiled code, built here for {client.platform} (Python "
        f"{client.version}), and the workers run {target.platform} (Python "
        f"{target.python or '?'}); compiled local code is not cross-built",
        package=decision.name,
        path=wheel.name,
        hint=f"run the client on the workers' platform, publish wheels of {decision.name} for "
        f"it to an index, or leave it out with ignore=[{decision.name!r}]",
    )


def _stored_wheel(
    decision: Decision, wheel: Path, store: Store, *, dist_info: Path | None = None
) -> Artifact:
    if not wheel.is_file():
        raise _installed_from_missing(decision, wheel)
    try:
        name, version, _, _ = parse_wheel_filename(wheel.name)
        filename = wheel.name
    except InvalidWheelFilename:
        try:
            filename = wheel_filename_from_zip(wheel)
        except NotFaithful as error:
            raise BuildError(
                f"{wheel} is not a wheel: {error}", package=decision.name, path=str(wheel)
            ) from error
        name, version, _, _ = parse_wheel_filename(filename)
    sha256 = sha256_file(wheel)
    expected = getattr(decision.source, "sha256", "")
    if expected and expected != sha256:
        raise BuildError(
            f"{wheel} is not the file {decision.name} was installed from (its hash differs)",
            package=decision.name,
            path=str(wheel),
            hint=f"reinstall {decision.name} from this file, or restore the original file",
        )
    if dist_info is not None:
        _check_against_record(decision, wheel, dist_info)
    store.put(wheel, sha256)
    return Artifact(name=str(name), version=str(version), filename=filename, sha256=sha256)


def _installed_from_missing(decision: Decision, path: Path) -> BuildError:
    return BuildError(
        f"{decision.name} was installed from {path}, which no longer exists",
        package=decision.name,
        path=str(path),
        hint=f"reinstall {decision.name} or leave it out with ignore=[{decision.name!r}]",
    )


def _check_against_record(decision: Decision, wheel: Path, dist_info: Path) -> None:
    mismatches = record_mismatches(wheel, dist_info)
    if mismatches:
        shown = ", ".join(mismatches[:5]) + (" ..." if len(mismatches) > 5 else "")
        raise BuildError(
            f"{wheel} is not the wheel {decision.name} was installed from: its files differ "
            f"from the installed ones ({shown})",
            package=decision.name,
            path=str(wheel),
            hint=f"reinstall {decision.name} from this file, or restore the original file",
        )


def _hash(kind: str, *parts: str) -> str:
    return hashlib.sha256("\0".join((kind, *parts)).encode()).hexdigest()


def _source_key(decision: Decision, context: _Context) -> str:
    source = decision.source
    # the interpreter a wheel is built with matters for compiled code
    built_by = f"{context.client.platform}\0{'.'.join(context.client.version.split('.')[:2])}"
    if isinstance(source, VcsSource):
        credentials = installed_credentials(_dist_info(decision, context), source.url)
        commit = source.commit or resolve_revision(decision, source, context.reporter,
                                                   credentials)
        subdirectory = getattr(source, "subdirectory", "")
        return _hash("vcs", source.url, commit, subdirectory, built_by)
    if isinstance(source, (EditableSource, DirectorySource)):
        return _hash("tree", tree_hash(Path(source.path), decision.name), built_by)
    if isinstance(source, ArchiveSource):
        archive = Path(file_url_to_path(source.url))
        if not archive.is_file():
            raise _installed_from_missing(decision, archive)
        return _hash("archive", sha256_file(archive), built_by)
    raise BuildError(  # pragma: no cover - plan never asks
        f"nothing to build for {decision.name}", package=decision.name
    )


def _build_wheel(
    decision: Decision, out: Path, context: _Context, dist_info: Path | None
) -> Path:
    source = decision.source
    if isinstance(source, VcsSource):
        project = out / "checkout"
        try:
            checkout(decision, source, project, installed_credentials(dist_info, source.url))
        except Unreachable as problem:
            return _vcs_fallback(decision, source, problem, out, context, dist_info)
        subdirectory = getattr(source, "subdirectory", "")
        if subdirectory:
            project = project / subdirectory
    elif isinstance(source, (EditableSource, DirectorySource)):
        project = Path(source.path)
        if not project.is_dir():
            raise BuildError(
                f"the source directory of {decision.name} is gone: {project}",
                package=decision.name,
                path=str(project),
                hint="restore the directory, reinstall the package, or ignore it",
            )
    elif isinstance(source, ArchiveSource):
        project = Path(file_url_to_path(source.url))
    else:  # pragma: no cover - plan never asks
        raise BuildError(f"nothing to build for {decision.name}", package=decision.name)
    wheels = out / "wheels"
    command = ["build", "--wheel", "--out-dir", str(wheels)]
    if context.client.executable and os.path.exists(context.client.executable):
        command += ["--python", context.client.executable]  # compiled code: the client's ABI
    result = run_uv([*command, str(project)], extra_env=context.uv_env)
    found = sorted(wheels.glob("*.whl")) if wheels.is_dir() else []
    if result.returncode != 0 or len(found) != 1:
        raise BuildError(
            f"building a wheel of {decision.name} from {_shown(source, project)} failed",
            package=decision.name,
            path=str(project),
            log_tail=scrubbed_tail(result.stdout, context.uv_env),
            hint="fix the build (the log above is uv's), or leave the package out with "
            f"ignore=[{decision.name!r}]",
        )
    return found[0]


def _shown(source: object, project: Path) -> str:
    if isinstance(source, VcsSource):
        return f"{source.url} at {source.commit or source.requested_revision or 'HEAD'}"
    return str(project)


def _vcs_fallback(
    decision: Decision,
    source: VcsSource,
    problem: Unreachable,
    out: Path,
    context: _Context,
    dist_info: Path | None,
) -> Path:
    """The Git source is out of reach: repack the installed files when that is faithful."""
    if dist_info is None or not _faithful(dist_info):
        why = ("its installed files are not at hand" if dist_info is None
               else "it is not a pure-Python install, so its installed files are no substitute")
        raise BuildError(
            f"{decision.name} cannot be built: {problem} ({source.url}), and {why}",
            package=decision.name,
            path=source.url,
            log_tail=tail(redact_text(problem.log)),
            hint="check that this machine can reach the repository (your SSH keys or Git "
            "credentials) and that the commit still exists, or leave the package out with "
            f"ignore=[{decision.name!r}]",
        )
    message = (f"{decision.name}: {problem} ({source.url}); using a wheel repacked from the "
               "installed files instead")
    logger.warning("%s", message)
    context.reporter.step("build", message)
    return _repack(decision, dist_info, out, why=f"{problem} ({source.url})")


def _read_record(path: Path) -> Artifact | None:
    try:
        return Artifact.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError):
        return None
