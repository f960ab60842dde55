"""The plan as uv resolved it for the target: the version each worker gets, and every
pin that had to be relaxed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from packaging.utils import canonicalize_name

from packsync.model import Decision, IndexConfig, Plan, Problem, Relaxation


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
            problems.append(_relaxed_problem(decided, decision, relaxation))
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


def _relaxed_problem(decided: Plan, decision: Decision, relaxation: Relaxation) -> Problem:
    """A warning where relaxing is the rule; where the plan promised the exact version
    (the client's own platform), a critical problem that says how to keep that promise."""
    platform = decided.target.platform
    becomes = (f"{decision.name} {decision.local_version} becomes {relaxation.version} on "
               f"{platform}: {relaxation.reason}")
    if decision.if_relaxed != "critical":
        return Problem(
            severity=decision.if_relaxed,
            message=becomes,
            packages=(decision.name,),
            hint=f"install {decision.name}=={relaxation.version} here to match exactly, "
                 "or refuse relaxing with strict=True",
        )
    return Problem(
        severity="critical",
        message=f"{decision.name} {decision.local_version} is installed here but cannot be "
                f"installed on the workers ({platform}, the same platform, where versions are "
                f"exact): {relaxation.reason}; indexes searched: {searched(decided.indexes)}; "
                f"the nearest there is {relaxation.version}",
        packages=(decision.name,),
        hint=f"configure the index {decision.name} {decision.local_version} was installed "
             "from (pip's index-url/extra-index-url/find-links or uv's [[index]]; "
             "`packsync indexes` shows what is searched), or accept the nearest version "
             "with relax_same_platform=True (--relax-same-platform, "
             "DASK_PACKSYNC__RELAX_SAME_PLATFORM=true)",
    )


def searched(indexes: IndexConfig) -> str:
    """The indexes a resolution searched, as configured (redacted), in uv's order."""
    urls = [indexes.index_url or "uv's default index",
            *indexes.extra_index_urls, *indexes.find_links]
    return ", ".join(urls)
