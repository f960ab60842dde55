"""Rules for a snapshot from another platform: what the workers do not need, and what
only they need. Pure, like the plan they belong to."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from packaging.specifiers import SpecifierSet

from packsync.model import Decision, PlanOptions, Problem, Snapshot, Target
from packsync.plan.dependencies import DependencyGraph, Edge, target_environment


def platform_only(
    snapshot: Snapshot,
    graph: DependencyGraph,
    target: Target,
    left_out: Mapping[str, str],
    options: PlanOptions,
    mandatory: Iterable[str],
) -> dict[str, str]:
    """Packages pulled in only by requirements whose markers are false on the target
    (never a ``mandatory`` one, one named in ``only``, or one the user requested)."""
    client = snapshot.environment
    on_target = target_environment(target, client)
    protected = set(mandatory) | set(options.only or ()) | {
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


def needed_only_there(
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
