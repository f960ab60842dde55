"""Accelerator variants: the packages PyTorch publishes once per accelerator, told apart by
a local version label (``torch 2.5.1+cpu``, ``2.5.1+cu124``) and served from an index per
accelerator (``https://download.pytorch.org/whl/cu124``).

The label is part of the version, so a pin keeps it, and the index of that accelerator
(``accelerator-index``) is searched for it. When the workers' accelerator is named
(``accelerator="cu124"``), each of these packages gets that variant of its public version
instead of the one installed here, and the plan shows the substitution. Pure.
"""

from __future__ import annotations

from dataclasses import replace

from packaging.version import InvalidVersion, Version

from packsync.model import ACCELERATOR, Decision, PlanOptions, Problem
from packsync.sources import IndexSource

VARIANT_PACKAGES = frozenset({"torch", "torchvision", "torchaudio"})


def with_accelerator(
    decisions: list[Decision], options: PlanOptions
) -> tuple[list[Decision], list[Problem], str, str]:
    """``decisions`` with the variant packages switched to ``options.accelerator``, a notice
    for the switch, and the accelerator whose index the resolution searches with its URL.

    Without an accelerator asked for, the variant installed here is the workers' (a
    ``+cpu`` build stays one), and its index is searched too: a torch installed with a
    one-off ``--index-url`` of PyTorch's still resolves.
    """
    chosen = options.accelerator or _installed_label(decisions)
    index = options.accelerator_index.replace("{accelerator}", chosen) if chosen else ""
    if not options.accelerator:
        notices = [Problem(
            severity="notice",
            message=f"the {chosen} variants installed here are kept; {index} is searched "
                    "for them",
        )] if index else []
        return decisions, notices, chosen if index else "", index
    switched: list[str] = []
    result = []
    for decision in decisions:
        public = _public(decision)
        if public is None:
            result.append(decision)
            continue
        variant = f"{public}+{chosen}"
        here = decision.local_version or decision.specifier.removeprefix("==")
        if here == variant:
            result.append(decision)
            continue
        why = f"{decision.name} {here or '(not installed here)'} → {variant} for {chosen} workers"
        switched.append(f"{decision.name} {here} → {variant}")
        result.append(replace(decision, specifier=f"=={variant}", fallbacks=(),
                              if_relaxed="warning", reason=f"{why}, from {index}"))
    problems = [Problem(
        severity="notice",
        message=f"accelerator {chosen}: " + ", ".join(switched) + f" (from {index})",
        packages=tuple(s.split(" ", 1)[0] for s in switched),
    )] if switched else []
    variants = any(_public(d) is not None for d in result)
    return result, problems, chosen if variants else "", index if variants else ""


def _installed_label(decisions: list[Decision]) -> str:
    """The accelerator of the variant packages installed here (``cpu`` for ``+cpu``),
    when they agree on one."""
    labels = set()
    for decision in decisions:
        if _public(decision) is not None:
            local = Version(decision.specifier.removeprefix("==")).local or ""
            if ACCELERATOR.fullmatch(local):
                labels.add(local)
    return labels.pop() if len(labels) == 1 else ""


def _public(decision: Decision) -> str | None:
    """The public version of a variant package pinned from an index, else None."""
    if (decision.key not in VARIANT_PACKAGES or decision.action != "pin"
            or not isinstance(decision.source, IndexSource)
            or not decision.specifier.startswith("==")):
        return None
    try:
        return Version(decision.specifier.removeprefix("==")).public
    except InvalidVersion:
        return None
