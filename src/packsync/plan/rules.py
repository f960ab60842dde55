"""The rules of package sync: Snapshot + Target + options -> Plan. Pure: no I/O at all.

Every decision carries its reason, so ``packsync plan`` can explain what each worker
gets before anything is built or launched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from packaging.version import InvalidVersion, Version

from packsync.conda.names import conda_names
from packsync.conda.plan import plan_conda
from packsync.errors import PlanError
from packsync.model import (
    FAIL_ON_LEVELS,
    Action,
    Decision,
    InstalledDist,
    Plan,
    PlanOptions,
    Problem,
    Snapshot,
    Target,
)
from packsync.plan.accelerators import with_accelerator
from packsync.plan.crossplatform import needed_only_there, platform_only
from packsync.plan.dependencies import DependencyGraph
from packsync.plan.lockfirst import LockChoice, choose_lock, conda_from_lock
from packsync.plan.targets import resolve_target
from packsync.sources import ArchiveSource, CondaSource, IndexSource

MANDATORY = ("dask", "distributed", "tornado", "cloudpickle", "msgpack")


def plan(
    snapshot: Snapshot, target: Target | str | None = None, options: PlanOptions | None = None
) -> Plan:
    """Decide, for each distribution of the snapshot, what the cluster gets, and why.

    Problems found on the way are recorded on the plan; ``enforce`` decides which stop a
    launch. Only impossible requests (a missing mandatory package, a mandatory one ignored,
    an unknown name in ``only``) raise here.
    """
    target = resolve_target(snapshot, target)
    options = options or PlanOptions()
    _check_mandatory(snapshot, options)
    graph = DependencyGraph.of(snapshot)
    client = snapshot.environment
    same_platform = target.platform == snapshot.interpreter.platform
    left_out = _outside_only(snapshot, graph, options)
    if not same_platform:
        left_out.update(platform_only(snapshot, graph, target, left_out, options, MANDATORY))

    problems = [Problem(severity="notice", message=note) for note in snapshot.notes]
    decisions: list[Decision] = []
    for dist in snapshot.dists:
        if dist.key in left_out:
            decisions.append(_decide(dist, "ignore", "", left_out[dist.key]))
            continue
        prefix = ""
        if dist.key in options.ignore:
            keepers = sorted(
                k for k in graph.requirers(dist.key, client)
                if k not in options.ignore and k not in left_out
            )
            if not keepers:
                decisions.append(_decide(dist, "ignore", "", "in the ignore list"))
                continue
            prefix = f"ignored, but required by {', '.join(keepers)}; "
        if dist.problems:
            why = "; ".join(dist.problems)
            decisions.append(_decide(dist, "ignore", "", f"broken metadata: {why}"))
            problems.append(Problem(
                severity="critical",
                message=f"{dist.name} {dist.version} has broken metadata: {why}",
                packages=(dist.name,),
                hint=f"reinstall it, or leave it out with ignore=[{dist.name!r}]",
            ))
            continue
        decisions.append(_decide_synced(dist, same_platform, options, prefix))

    synced = [d.key for d in decisions if d.action != "ignore"]
    problems += _conflicts(graph, synced, client, options.strict)
    chosen = LockChoice()
    if not same_platform:
        added, reported = needed_only_there(graph, synced, client, target, options)
        decisions += added
        problems += reported
    if not same_platform or options.lock_environment:
        # asked for a lock environment, the workers get it on this platform too: its
        # versions are what the user chose over "exactly as here"
        chosen = choose_lock(snapshot, target, options.lock_environment)
        problems += chosen.problems
        decisions = [_from_lock(d, chosen, target) for d in decisions]
    decisions, substituted, accelerator, accelerator_index = with_accelerator(
        decisions, options)
    problems += substituted
    conda = None
    if snapshot.conda is not None:
        dropped = {d.key for d in decisions if d.action == "ignore"}
        conda = conda_from_lock(
            plan_conda(snapshot.conda, target, options, mandatory=MANDATORY, left_out=dropped),
            chosen, snapshot, target, frozenset(MANDATORY),
        )
    return Plan(
        target=target, decisions=tuple(decisions), indexes=snapshot.indexes,
        problems=tuple(problems), conda=conda,
        project_lock=chosen.lock.path if chosen.lock is not None else "",
        project_lock_environment=chosen.lock.environment if chosen.lock is not None else "",
        lock_constraints=_lock_constraints(chosen, decisions),
        accelerator=accelerator,
        accelerator_index=accelerator_index,
    )


def enforce(problems: Iterable[Problem], fail_on: str) -> None:
    """Stop with one error listing every problem at or above the ``fail_on`` level."""
    levels = FAIL_ON_LEVELS[fail_on]
    stopping = [p for p in problems if p.severity in levels]
    if not stopping:
        return
    packages = sorted({name for p in stopping for name in p.packages})
    hints = list(dict.fromkeys(p.hint for p in stopping if p.hint))
    raise PlanError(
        f"{len(stopping)} problem(s) stop the launch (fail_on={fail_on!r}):\n  "
        + "\n  ".join(f"{p.severity}: {p.message}" for p in stopping),
        package=", ".join(packages),
        hint="; ".join(hints) or "fix them, or stop only on critical ones: fail_on='critical'",
    )


def _outside_only(
    snapshot: Snapshot, graph: DependencyGraph, options: PlanOptions
) -> dict[str, str]:
    if options.only is None:
        return {}
    unknown = sorted(n for n in options.only if snapshot.get(n) is None)
    if unknown:
        raise PlanError(
            f"only=[...] names packages that are not installed here: {', '.join(unknown)}",
            package=", ".join(unknown),
            hint="check the names with `packsync scan`",
        )
    needed = graph.closure(set(options.only) | set(MANDATORY), snapshot.environment)
    why = f"not needed by only=[{', '.join(sorted(options.only))}] or by Dask"
    return {d.key: why for d in snapshot.dists if d.key not in needed}


def _conflicts(
    graph: DependencyGraph, synced: Iterable[str], client: Mapping[str, str], strict: bool
) -> list[Problem]:
    if strict:
        return [
            Problem(severity="critical", message=p.message, packages=p.packages,
                    hint="fix the conflict here (pip check), or launch without strict")
            for p in graph.conflicts(synced, client, "critical")
        ]
    return [
        Problem(severity="warning", message=p.message + "; the cluster gets the same set as here",
                packages=p.packages, hint="fix the conflict here (pip check)")
        for p in graph.conflicts(synced, client, "warning")
    ]


def _check_mandatory(snapshot: Snapshot, options: PlanOptions) -> None:
    missing = [
        name for name in MANDATORY if snapshot.get(name) is None and not _in_conda(snapshot, name)
    ]
    if missing:
        raise PlanError(
            "a Dask cluster needs these packages in your environment, and they are missing: "
            + ", ".join(missing),
            package=", ".join(missing),
            hint=f"install them where you run Python: pip install {' '.join(missing)}",
        )
    ignored = sorted(set(MANDATORY) & options.ignore)
    if ignored:
        raise PlanError(
            f"these packages cannot be ignored, the cluster needs them: {', '.join(ignored)}",
            package=", ".join(ignored),
            hint="remove them from ignore=[...]",
        )


def _in_conda(snapshot: Snapshot, name: str) -> bool:
    """Whether a conda package of the snapshot provides ``name`` (e.g. dask-core: dask)."""
    if snapshot.conda is None:
        return False
    return any(snapshot.conda.get(candidate) is not None for candidate in conda_names(name))


def _decide_synced(
    dist: InstalledDist, same_platform: bool, options: PlanOptions, prefix: str
) -> Decision:
    source = dist.source
    if isinstance(source, CondaSource):
        why = prefix + f"installed by conda package {source.package}: it travels with conda"
        return _decide(dist, "conda", "", why)
    if isinstance(source, ArchiveSource):
        if source.url.startswith("file:"):
            why = prefix + "installed from a local file"
            return _decide(dist, "upload", f"=={dist.version}", why)
        return _decide(dist, "pin", f"@ {source.url}", prefix + "installed from this URL")
    if source.is_local_code:
        return _decide(
            dist, "build", f"=={dist.version}", prefix + f"{source.kind} install: wheel built here"
        )
    exact = f"=={dist.version}"
    if dist.key in MANDATORY:
        return _decide(dist, "pin", exact, prefix + "Dask needs it: exact version")
    if options.strict:
        return _decide(dist, "pin", exact, prefix + "strict: exact version")
    nearest = f"the nearest {_major_minor(dist.version)}.* there is"
    if same_platform and not options.relax_same_platform:
        # still resolved to its nearest, so that the plan shows what the workers would get
        why = prefix + f"same platform: exact version (else {nearest}, a critical problem)"
        return replace(_decide(dist, "pin", exact, why), fallbacks=_nearest(dist.version),
                       if_relaxed="critical")
    platform = "same platform" if same_platform else "other platform"
    why = f"{platform}: exact version, else {nearest}"
    return replace(_decide(dist, "pin", exact, prefix + why), fallbacks=_nearest(dist.version))


def _lock_constraints(chosen: LockChoice, decisions: Iterable[Decision]) -> tuple[str, ...]:
    """The lock's versions for the target of every package the plan does not decide: the
    dependencies of what only the workers need come from the lock too. Conda packages are
    the conda side's (their versions are often no PyPI version: ``openssl 1.1.1w``)."""
    decided = {d.key for d in decisions}
    conda = {p.key for p in chosen.lock.packages if p.build} if chosen.lock else set()
    return tuple(f"{key}=={version}" for key, version in sorted(chosen.versions.items())
                 if key not in decided and key not in conda)


def _from_lock(decision: Decision, chosen: LockChoice, target: Target) -> Decision:
    """An index pin as the project lock has it for the target: exact, never relaxed (the
    Dask packages stay as here: client and workers must speak the same protocol)."""
    version = chosen.versions.get(decision.key)
    if (chosen.lock is None or version is None or decision.action != "pin"
            or not isinstance(decision.source, IndexSource) or decision.key in MANDATORY):
        return decision
    why = f"{chosen.lock.kind} locks {version} for {target.platform}"
    if not decision.local_version:
        why = f"{decision.reason}; {why}"
    return replace(decision, specifier=f"=={version}", fallbacks=(), if_relaxed="warning",
                   reason=why)


def _decide(dist: InstalledDist, action: Action, specifier: str, reason: str) -> Decision:
    return Decision(
        name=dist.name,
        local_version=dist.version,
        action=action,
        specifier=specifier,
        reason=reason,
        source=dist.source,
    )


def _nearest(version: str) -> tuple[str, ...]:
    """Looser pins, nearest first: the newest release not above it, then any of major.minor."""
    series = f"=={_major_minor(version)}.*"
    return (f"<={version},{series}", series)


def _major_minor(version: str) -> str:
    try:
        release = Version(version).release
    except InvalidVersion:
        return ".".join(version.split(".")[:2])
    return ".".join(str(part) for part in (release + (0,))[:2])


