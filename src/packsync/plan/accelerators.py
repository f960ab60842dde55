"""Accelerator variants: the packages PyTorch publishes once per accelerator, told apart by
a local version label (``torch 2.5.1+cpu``, ``2.5.1+cu124``) and served from an index per
accelerator (``https://download.pytorch.org/whl/cu124``).

The label is part of the version, so a pin keeps it and the index that has it. When the
workers' accelerator is named (``accelerator="cu124"``), each of these packages gets that
variant of its public version instead of the one installed here, and the plan shows the
substitution. Pure.
"""

from __future__ import annotations

from dataclasses import replace

from packaging.version import InvalidVersion, Version

from packsync.model import Decision, PlanOptions, Problem
from packsync.sources import IndexSource

VARIANT_PACKAGES = frozenset({"torch", "torchvision", "torchaudio"})


def with_accelerator(
    decisions: list[Decision], options: PlanOptions
) -> tuple[list[Decision], list[Problem]]:
    """``decisions`` with the variant packages switched to ``options.accelerator``, and a
    notice listing every substitution."""
    if not options.accelerator:
        return decisions, []
    switched: list[str] = []
    result = []
    for decision in decisions:
        public = _public(decision)
        if public is None:
            result.append(decision)
            continue
        variant = f"{public}+{options.accelerator}"
        here = decision.local_version or decision.specifier.removeprefix("==")
        if here == variant:
            result.append(decision)
            continue
        why = (f"{decision.name} {here or '(not installed here)'} → {variant} for "
               f"{options.accelerator} workers, from {options.accelerator_index}")
        switched.append(f"{decision.name} {here} → {variant}")
        result.append(replace(decision, specifier=f"=={variant}", fallbacks=(),
                              if_relaxed="warning", reason=why))
    problems = [Problem(
        severity="notice",
        message=f"accelerator {options.accelerator}: " + ", ".join(switched)
                + f" (from {options.accelerator_index})",
        packages=tuple(s.split(" ", 1)[0] for s in switched),
    )] if switched else []
    return result, problems


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
