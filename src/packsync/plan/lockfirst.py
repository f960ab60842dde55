"""Lockfile first: the working project's lock, when this environment is what it locks,
gives a worker on another platform the exact versions the project resolved for it.

Without such a lock a cross-platform plan can only guess (the same version, else the
nearest of its major.minor); a universal ``uv.lock``, a multi-platform ``pylock.toml`` or
a ``pixi.lock`` already holds the answer. A lock is used only if every package it pins
for this platform and that is installed here from an index has its locked version:
otherwise it describes another environment, and is reported and left alone. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from packsync.conda.model import CondaPlan
from packsync.conda.names import pypi_name
from packsync.model import LockedVersion, Problem, ProjectLock, Snapshot, Target
from packsync.plan.dependencies import marker_holds, target_environment

_SHOWN = 5  # mismatches named in a report


@dataclass(frozen=True, kw_only=True, slots=True)
class LockChoice:
    """The project lock a plan follows (if any), its versions for the target, and why."""

    lock: ProjectLock | None = None
    versions: Mapping[str, str] = field(default_factory=dict)  # canonical name -> version
    problems: tuple[Problem, ...] = ()


def choose_lock(snapshot: Snapshot, target: Target) -> LockChoice:
    """The first project lock this environment matches and that covers ``target``."""
    client = snapshot.environment
    on_target = target_environment(target, client)
    problems: list[Problem] = []
    for lock in snapshot.project_locks:
        if lock.environments and not any(marker_holds(m, on_target) for m in lock.environments):
            problems.append(Problem(
                severity="warning",
                message=f"the project lock {lock.path} is not resolved for {target.platform} "
                        f"(its environments: {'; '.join(lock.environments)}): not used",
                hint="add the workers' platform to the lock's environments and lock again",
            ))
            continue
        matched, mismatched = _compare(lock, snapshot)
        if mismatched:
            shown = ", ".join(mismatched[:_SHOWN]) + (", …" if len(mismatched) > _SHOWN else "")
            problems.append(Problem(
                severity="warning",
                message=f"the project lock {lock.path} does not match this environment "
                        f"({shown}): not used; versions for {target.platform} follow the "
                        "usual rule",
                packages=tuple(m.split(" ", 1)[0] for m in mismatched),
                hint=_UPDATE.get(lock.kind, "install the lock here, or lock this environment"),
            ))
            continue
        if not matched:
            problems.append(Problem(
                severity="notice",
                message=f"the project lock {lock.path} pins none of the packages installed "
                        "here from an index: not used",
            ))
            continue
        versions = _versions_for(lock.packages, on_target)
        problems.append(Problem(
            severity="notice",
            message=f"versions for {target.platform} come from the project lock {lock.path}, "
                    f"which this environment matches ({matched} packages)",
        ))
        return LockChoice(lock=lock, versions=versions, problems=tuple(problems))
    return LockChoice(problems=tuple(problems))


def conda_from_lock(
    conda: CondaPlan, chosen: LockChoice, snapshot: Snapshot, target: Target,
    mandatory: frozenset[str],
) -> CondaPlan:
    """The conda pins a ``pixi.lock`` decides for the target: its version there, never
    relaxed (the build is left to the solver: builds differ per platform). Python, noarch
    packages (already exact) and the Dask packages stay as the conda rules have them."""
    if chosen.lock is None or chosen.lock.kind != "pixi.lock" or snapshot.conda is None:
        return conda
    decisions = []
    for decision in conda.decisions:
        package = snapshot.conda.get(decision.name)
        version = chosen.versions.get(canonicalize_name(decision.name))
        if (decision.action != "pin" or package is None or version is None
                or package.name == "python" or package.noarch
                or set(package.python_dists) & mandatory
                or pypi_name(package.name) in mandatory):
            decisions.append(decision)
            continue
        decisions.append(replace(
            decision, spec=f"{decision.name} =={version}",
            reason=f"pixi.lock locks {version} for {conda.subdir} ({target.platform})"))
    return replace(conda, decisions=tuple(decisions))


_UPDATE = {
    "uv.lock": "bring the environment in line with the lock (`uv sync`), or the lock with "
               "the environment (`uv lock`)",
    "pixi.lock": "bring the environment in line with the lock (`pixi install`), or lock "
                 "again (`pixi lock`)",
    "pylock.toml": "install the lock here (`uv pip sync pylock.toml`), or write it again",
}


def _compare(lock: ProjectLock, snapshot: Snapshot) -> tuple[int, list[str]]:
    """How many index-installed packages the lock pins as installed, and those it pins
    otherwise (``"name 1.0 here, 1.1 in the lock"``)."""
    here = _all_versions(lock.packages, snapshot.environment)
    installed = [(d.key, d.name, d.version) for d in snapshot.dists if d.source.kind == "index"]
    if lock.kind == "pixi.lock" and snapshot.conda is not None:
        installed += [(canonicalize_name(p.name), p.name, p.version)
                      for p in snapshot.conda.packages]
    matched = 0
    mismatched: list[str] = []
    for key, name, version in installed:
        locked = here.get(key)
        if not locked:
            continue
        if any(_same_version(version, v) for v in locked):
            matched += 1
        else:
            mismatched.append(f"{name} {version} here, {' or '.join(locked)} in the lock")
    return matched, mismatched


def _versions_for(
    packages: tuple[LockedVersion, ...], environment: Mapping[str, str]
) -> dict[str, str]:
    """The version of each package where ``environment`` holds (one locked at several
    versions there is left out: the lock does not say which)."""
    found = _all_versions(packages, environment)
    return {key: versions[0] for key, versions in found.items() if len(versions) == 1}


def _all_versions(
    packages: tuple[LockedVersion, ...], environment: Mapping[str, str]
) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for package in packages:
        if marker_holds(package.marker, environment):
            versions = found.setdefault(package.key, [])
            if package.version not in versions:
                versions.append(package.version)
    return found


def _same_version(installed: str, locked: str) -> bool:
    try:
        return Version(installed) == Version(locked)
    except InvalidVersion:
        return installed == locked
