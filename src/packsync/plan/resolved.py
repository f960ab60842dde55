"""The plan as uv resolved it for the target: the version each worker gets, and every
pin that had to be relaxed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from packaging.utils import canonicalize_name

from packsync.model import Decision, Plan, Problem, Relaxation


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
