"""Lockfile first: the working project's lock, when this environment is what it locks,
gives a worker on another platform the exact versions the project resolved for it.

Without such a lock a cross-platform plan can only guess (the same version, else the
nearest of its major.minor); a universal ``uv.lock``, a multi-platform ``pylock.toml`` or
a ``pixi.lock`` already holds the answer. A lock is used only if every package it pins
for this platform and that is installed here from an index has its locked version (a
conda package its locked build too): otherwise it describes another environment, and is
reported and left alone. Of a ``pixi.lock``, the scan read the environment this Python
runs in; conda packages then get the very file that environment locks for the target.

The workers may be asked for another environment of the ``pixi.lock``
(``lock_environment="cuda"`` from a Mac running ``default``): this machine is still
checked against its own environment, and when it matches, the target's versions and
conda files come from the one asked for. A package installed here that it lacks follows
the usual rule (the code run here needs it); one only it has is held to its locked file
should the solver need it, as what only the target has always is. An environment the
lock lacks, or one with nothing for the target's platform, is critical, and so is a
request for an environment that no usable ``pixi.lock`` could honour. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from packsync.conda.model import CondaPlan
from packsync.conda.names import pypi_name
from packsync.model import LockedVersion, Problem, ProjectLock, Snapshot, Target, lock_label
from packsync.plan.dependencies import marker_holds, target_environment

_SHOWN = 5  # mismatches named in a report


@dataclass(frozen=True, kw_only=True, slots=True)
class LockChoice:
    """The project lock a plan follows (if any), its versions for the target, and why."""

    lock: ProjectLock | None = None
    versions: Mapping[str, str] = field(default_factory=dict)  # canonical name -> version
    conda: Mapping[str, LockedVersion] = field(default_factory=dict)  # its conda packages
    problems: tuple[Problem, ...] = ()


def choose_lock(snapshot: Snapshot, target: Target, environment: str = "") -> LockChoice:
    """The first project lock this environment matches and that covers ``target``; with
    ``environment``, that environment of the ``pixi.lock`` gives the target's versions."""
    chosen = _choose(snapshot, target, environment)
    if not environment or chosen.lock is not None or any(
            p.severity == "critical" for p in chosen.problems):
        return chosen
    return replace(chosen, problems=(*chosen.problems, Problem(
        severity="critical",
        message=f"the workers are asked for the environment {environment!r} of the "
                "project's pixi.lock, but no pixi.lock this environment matches was found",
        hint="run from the pixi project, in an environment its pixi.lock matches "
             "(`pixi install`), or leave lock_environment out",
    )))


def _choose(snapshot: Snapshot, target: Target, environment: str) -> LockChoice:
    client = snapshot.environment
    on_target = target_environment(target, client)
    problems: list[Problem] = []
    for lock in snapshot.project_locks:
        if environment and lock.kind != "pixi.lock":
            continue  # only a pixi.lock has environments to ask for
        workers = lock
        if environment and environment != lock.environment:
            found = [o for o in lock.others if o.environment == environment]
            names = ", ".join(sorted(o.environment for o in (lock, *lock.others)))
            if not found:
                problems.append(Problem(
                    severity="critical",
                    message=f"the project lock {lock.path} has no environment "
                            f"{environment!r}, asked for the workers (it has: {names})",
                    hint="name one of its environments, or add it to the pixi manifest "
                         "and lock again (`pixi lock`)",
                ))
                continue
            workers = found[0]
            if not any(marker_holds(m, on_target) for m in workers.environments):
                problems.append(Problem(
                    severity="critical",
                    message=f"the project lock {workers.label}, asked for the workers, has "
                            f"no packages for {target.platform} (it has: {names}; the "
                            f"ones for {target.platform}: {_for(lock, on_target) or 'none'})",
                    hint="add the workers' platform to that environment and lock again",
                ))
                continue
        if workers is lock and lock.environments and not any(
                marker_holds(m, on_target) for m in lock.environments):
            problems.append(Problem(
                severity="warning",
                message=f"the project lock {lock.label} is not resolved for {target.platform} "
                        f"(its environments: {'; '.join(lock.environments)}): not used",
                hint="add the workers' platform to the lock's environments and lock again",
            ))
            continue
        matched, mismatched = _compare(lock, snapshot)
        if mismatched:
            shown = ", ".join(mismatched[:_SHOWN]) + (", …" if len(mismatched) > _SHOWN else "")
            problems.append(Problem(
                severity="warning",
                message=f"the project lock {lock.label} does not match this environment "
                        f"({shown}): not used; versions for {target.platform} follow the "
                        "usual rule",
                packages=tuple(m.split(" ", 1)[0] for m in mismatched),
                hint=_UPDATE.get(lock.kind, "install the lock here, or lock this environment"),
            ))
            continue
        if not matched:
            problems.append(Problem(
                severity="notice",
                message=f"the project lock {lock.label} pins none of the packages installed "
                        "here from an index: not used",
            ))
            continue
        versions = _versions_for(workers.packages, on_target)
        conda = {p.name: p for p in workers.packages
                 if p.build and p.key in versions and marker_holds(p.marker, on_target)}
        problems.append(Problem(
            severity="notice",
            message=f"versions for {target.platform} come from the project lock {lock.label}, "
                    f"which this environment matches ({matched} packages)" if workers is lock
            else f"versions for {target.platform} come from the project lock "
                 f"{workers.label}, asked for the workers; this machine runs "
                 f"{lock.environment} ({matched} packages match it)",
        ))
        return LockChoice(lock=workers, versions=versions, conda=conda,
                          problems=tuple(problems))
    return LockChoice(problems=tuple(problems))


def _for(lock: ProjectLock, on_target: Mapping[str, str]) -> str:
    """The environments of a ``pixi.lock`` that have packages where ``on_target`` holds."""
    return ", ".join(sorted(o.environment for o in (lock, *lock.others)
                            if any(marker_holds(m, on_target) for m in o.environments)))


def conda_from_lock(
    conda: CondaPlan, chosen: LockChoice, snapshot: Snapshot, target: Target,
    mandatory: frozenset[str],
) -> CondaPlan:
    """The conda pins a ``pixi.lock`` decides for the target: the very file it locks there
    (version, build and, when the lock has it, SHA-256), never relaxed. Python and the
    packages of Dask keep the client's version: they take the lock's file only when it has
    that version (a noarch package, already exact, when it has that build too). What only
    the target has in the lock (``libgcc``) is held to its file too, if the solver needs it."""
    if chosen.lock is None or snapshot.conda is None:
        return conda
    decisions = []
    for decision in conda.decisions:
        package = snapshot.conda.get(decision.name)
        locked = chosen.conda.get(decision.name)
        if decision.action != "pin" or package is None or locked is None:
            decisions.append(decision)
            continue
        keeps_its_own = (package.name == "python" or bool(package.noarch)
                         or bool(set(package.python_dists) & mandatory)
                         or pypi_name(package.name) in mandatory)
        if keeps_its_own and (locked.version != package.version
                              or (package.noarch and locked.build != package.build)):
            decisions.append(decision)
            continue
        decisions.append(replace(
            decision, spec=_file_spec(locked),
            reason=f"{lock_label(chosen.lock.kind, chosen.lock.environment)} locks "
                   f"{locked.file} for {conda.subdir} ({target.platform})"))
    here = {d.name for d in conda.decisions}
    constraints = tuple(_file_spec(p) for name, p in sorted(chosen.conda.items())
                        if name not in here)
    return replace(conda, decisions=tuple(decisions), constraints=constraints)


def _file_spec(locked: LockedVersion) -> str:
    """A match spec for the one file the lock names (by its SHA-256 when it has one)."""
    digest = f"[sha256={locked.sha256}]" if locked.sha256 else ""
    return f"{locked.name} =={locked.version} {locked.build}{digest}"


_UPDATE = {
    "uv.lock": "bring the environment in line with the lock (`uv sync`), or the lock with "
               "the environment (`uv lock`)",
    "pixi.lock": "bring the environment in line with the lock (`pixi install`), or lock "
                 "again (`pixi lock`)",
    "pylock.toml": "install the lock here (`uv pip sync pylock.toml`), or write it again",
}


def _compare(lock: ProjectLock, snapshot: Snapshot) -> tuple[int, list[str]]:
    """How many index-installed (and conda) packages the lock pins as installed, and those
    it pins otherwise (``"name 1.0 here, 1.1 in the lock"``); a conda package the lock
    has as one matches only with its build."""
    here = _all_versions(lock.packages, snapshot.environment)
    installed = [(d.key, d.name, d.version) for d in snapshot.dists if d.source.kind == "index"]
    matched = 0
    mismatched: list[str] = []
    if lock.kind == "pixi.lock" and snapshot.conda is not None:
        builds = {p.name: f"{p.version} {p.build}" for p in lock.packages
                  if p.build and marker_holds(p.marker, snapshot.environment)}
        for package in snapshot.conda.packages:
            build = builds.get(package.name)
            if build is None:  # not locked as a conda package: its version, as for pip's
                installed.append((canonicalize_name(package.name), package.name,
                                  package.version))
            elif build == f"{package.version} {package.build}":
                matched += 1
            else:
                mismatched.append(f"{package.name} {package.version} {package.build} here, "
                                  f"{build} in the lock")
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
