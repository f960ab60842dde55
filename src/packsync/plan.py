"""The rules of package sync: Snapshot + Target + options -> Plan. Pure: no I/O at all.

Every decision carries its reason, so ``packsync plan`` can explain what each worker
gets before anything is built or launched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from packsync.conda.names import conda_names
from packsync.conda.plan import plan_conda
from packsync.dependencies import DependencyGraph, Edge, target_environment
from packsync.errors import PlanError
from packsync.model import (
    FAIL_ON_LEVELS,
    Action,
    Decision,
    InstalledDist,
    Plan,
    PlanOptions,
    Problem,
    Relaxation,
    Snapshot,
    Target,
)
from packsync.sources import ArchiveSource, CondaSource

MANDATORY = ("dask", "distributed", "tornado", "cloudpickle", "msgpack")


TARGET_MACHINES = ("x86_64", "aarch64")
DEFAULT_LIBC = "manylinux_2_28"


def default_target(snapshot: Snapshot) -> Target:
    """Workers like the client when it runs Linux, else Linux x86_64; the client's Python."""
    os_name, _, machine = snapshot.interpreter.platform.partition("-")
    if os_name == "linux" and machine in TARGET_MACHINES:
        return Target(
            os=os_name,
            machine=machine,
            libc=snapshot.interpreter.libc or DEFAULT_LIBC,
            python=snapshot.interpreter.version,
        )
    return Target(machine="x86_64", libc=DEFAULT_LIBC, python=snapshot.interpreter.version)


def resolve_target(snapshot: Snapshot, requested: Target | str | None) -> Target:
    """The target asked for (a ``Target`` or a name like ``linux-aarch64``), or the default."""
    if requested is None:
        return default_target(snapshot)
    if isinstance(requested, Target):
        return requested
    os_name, _, machine = requested.partition("-")
    if os_name != "linux" or machine not in TARGET_MACHINES:
        raise PlanError(
            f"workers cannot run on {requested!r}",
            hint="choose one of: " + ", ".join(f"linux-{m}" for m in TARGET_MACHINES),
        )
    default = default_target(snapshot)
    libc = default.libc if default.platform == requested else DEFAULT_LIBC
    return Target(machine=machine, libc=libc, python=snapshot.interpreter.version)


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
        left_out.update(_platform_only(snapshot, graph, target, left_out, options))

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
        decisions.append(_decide_synced(dist, same_platform, options.strict, prefix))

    synced = [d.key for d in decisions if d.action != "ignore"]
    problems += _conflicts(graph, synced, client, options.strict)
    if not same_platform:
        added, reported = _needed_only_there(graph, synced, client, target, options)
        decisions += added
        problems += reported
    conda = None
    if snapshot.conda is not None:
        dropped = {d.key for d in decisions if d.action == "ignore"}
        conda = plan_conda(
            snapshot.conda, target, options, mandatory=MANDATORY, left_out=dropped
        )
    return Plan(
        target=target, decisions=tuple(decisions), indexes=snapshot.indexes,
        problems=tuple(problems), conda=conda,
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


def _platform_only(
    snapshot: Snapshot,
    graph: DependencyGraph,
    target: Target,
    left_out: Mapping[str, str],
    options: PlanOptions,
) -> dict[str, str]:
    """Packages pulled in only by requirements whose markers are false on the target."""
    client = snapshot.environment
    on_target = target_environment(target, client)
    protected = set(MANDATORY) | set(options.only or ()) | {
        d.key for d in snapshot.dists if d.requested
    }
    dropped: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for dist in snapshot.dists:
            if dist.key in protected or dist.key in dropped or dist.key in left_out:
                continue
            pulled_by = [e for e in graph.requiring(dist.key) if e.applies(client)]
            if not pulled_by:
                continue  # nothing here needs it: the user installed it, keep it
            live = [e for e in pulled_by if e.requirer not in dropped | left_out.keys()]
            if any(e.applies(on_target) for e in live):
                continue
            if live:
                needs = "; ".join(f"{e.requirer} needs it only when {e.marker}" for e in live)
                dropped[dist.key] = f"not for {target.platform}: {needs}"
            else:
                by = ", ".join(sorted({e.requirer for e in pulled_by}))
                dropped[dist.key] = f"not for {target.platform}: only needed by {by}, left out"
            changed = True
    return dropped


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
    dist: InstalledDist, same_platform: bool, strict: bool, prefix: str
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
    if strict:
        return _decide(dist, "pin", exact, prefix + "strict: exact version")
    platform = "same platform" if same_platform else "other platform"
    why = f"{platform}: exact version, else the nearest {_major_minor(dist.version)}.* there is"
    return replace(_decide(dist, "pin", exact, prefix + why), fallbacks=_nearest(dist.version))


def _decide(dist: InstalledDist, action: Action, specifier: str, reason: str) -> Decision:
    return Decision(
        name=dist.name,
        local_version=dist.version,
        action=action,
        specifier=specifier,
        reason=reason,
        source=dist.source,
    )


def _needed_only_there(
    graph: DependencyGraph,
    synced: Iterable[str],
    client: Mapping[str, str],
    target: Target,
    options: PlanOptions,
) -> tuple[list[Decision], list[Problem]]:
    """Requirements only the target's markers switch on, and that nothing here installed.

    They are added for the workers (resolved there with their own dependencies), since
    a synced package needs them on that platform; under ``strict`` only reported.
    """
    members = set(synced)
    on_target = target_environment(target, client)
    wanted: dict[str, list[Edge]] = {}
    for e in graph.edges:
        if (e.requirer in members and e.name not in graph.versions
                and e.name not in options.ignore
                and e.applies(on_target) and not e.applies(client)):
            wanted.setdefault(e.name, []).append(e)
    added: list[Decision] = []
    reported: list[Problem] = []
    for _, edges in sorted(wanted.items()):
        specifier = SpecifierSet()
        for e in edges:
            specifier &= e.requirement.specifier
        display = edges[0].requirement.name
        needs = "; ".join(f"{e.requirer} needs {e.requirement}" for e in edges)
        if options.strict:
            reported.append(Problem(
                severity="warning",
                message=f"on {target.platform} {needs}, which is not installed here: "
                        "under strict the workers will not have it",
                packages=(display, *(e.requirer for e in edges)),
                hint=f"pip install '{display}{specifier}' here so that it is synced",
            ))
            continue
        added.append(Decision(
            name=display,
            local_version="",
            action="pin",
            specifier=str(specifier),
            reason=f"not installed here, but on {target.platform} {needs}",
        ))
        reported.append(Problem(
            severity="warning",
            message=f"the workers get {display}{specifier}, which is not installed here: on "
                    f"{target.platform} {needs}",
            packages=(display, *(e.requirer for e in edges)),
            hint=f"install {display} here too to keep both sides alike, or ignore=[{display!r}]",
        ))
    return added, reported


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


def with_resolution(
    decided: Plan, versions: Mapping[str, str], relaxed: Iterable[Relaxation]
) -> Plan:
    """The plan as resolved for its target: what each worker gets, and every relaxed pin."""
    relaxations: dict[str, Relaxation] = {canonicalize_name(r.name): r for r in relaxed}
    problems = list(decided.problems)
    decisions = []
    for decision in decided.decisions:
        relaxation = relaxations.get(decision.key)
        if relaxation is not None:
            decision = replace(
                decision,
                specifier=relaxation.specifier,
                reason=f"relaxed: {relaxation.reason}",
            )
            problems.append(Problem(
                severity="warning",
                message=f"{decision.name} {decision.local_version} becomes {relaxation.version} "
                        f"on {decided.target.platform}: {relaxation.reason}",
                packages=(decision.name,),
                hint=f"install {decision.name}=={relaxation.version} here to match exactly, "
                     "or refuse relaxing with strict=True",
            ))
        local = decision.local_version if decision.action in ("build", "upload") else ""
        version = versions.get(decision.key) or local
        decisions.append(replace(decision, cluster_version=version))
    known = {d.key for d in decisions}
    added = [d.name for d in decided.decisions if not d.local_version and d.action == "pin"]
    for key, version in sorted(versions.items()):
        if key not in known:  # a dependency of a package added for the target
            decisions.append(Decision(
                name=key, local_version="", action="pin", specifier=f"=={version}",
                cluster_version=version,
                reason=f"not installed here: a dependency of {', '.join(added) or 'the lock'}",
            ))
    return replace(decided, decisions=tuple(decisions), problems=tuple(problems))
