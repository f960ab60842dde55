"""The user's planning options: Python arguments first, then Dask configuration.

The Dask keys are ``packsync.ignore``, ``packsync.only``, ``packsync.strict``,
``packsync.fail-on``, ``packsync.relax-same-platform``, ``packsync.accelerator``,
``packsync.accelerator-index`` and ``packsync.lock-environment`` (so ``DASK_PACKSYNC__STRICT=true``
or a YAML file work too).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from packsync import config
from packsync.errors import PlanError
from packsync.model import ACCELERATOR, FAIL_ON_LEVELS, PlanOptions


def plan_options(
    *,
    ignore: Iterable[str] | None = None,
    only: Iterable[str] | None = None,
    strict: bool | None = None,
    fail_on: str | None = None,
    relax_same_platform: bool | None = None,
    accelerator: str | None = None,
    lock_environment: str | None = None,
) -> PlanOptions:
    """Options from the arguments given, the rest from ``packsync.*`` Dask config."""
    chosen_fail_on = fail_on if fail_on is not None else config.fail_on()
    if chosen_fail_on not in FAIL_ON_LEVELS:
        raise PlanError(
            f"fail_on={chosen_fail_on!r} is not a level packsync knows",
            hint=f"use one of: {', '.join(FAIL_ON_LEVELS)}",
        )
    chosen_only = only if only is not None else config.only()
    chosen_accelerator = accelerator if accelerator is not None else config.accelerator()
    if chosen_accelerator and ACCELERATOR.fullmatch(chosen_accelerator) is None:
        raise PlanError(
            f"accelerator={chosen_accelerator!r} is not an accelerator packsync knows",
            hint="use cpu, a CUDA version such as cu124, or a ROCm version such as rocm6.2",
        )
    return PlanOptions.create(
        ignore=_names(ignore if ignore is not None else config.ignore()),
        only=None if chosen_only is None else _names(chosen_only),
        strict=bool(strict if strict is not None else config.strict()),
        fail_on=chosen_fail_on,
        relax_same_platform=bool(
            relax_same_platform if relax_same_platform is not None
            else config.relax_same_platform()
        ),
        accelerator=chosen_accelerator or "",
        accelerator_index=config.accelerator_index(),
        lock_environment=(lock_environment if lock_environment is not None
                          else config.lock_environment()),
    )


def _names(value: Any) -> list[str]:
    """A list of names from an argument or config value (a comma-separated string works too)."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value)
