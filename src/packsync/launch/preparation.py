"""Everything a launch needs before its first process: the environment, ready on this machine.

Scan, plan, build and lock (``packsync.pipeline``), the environment materialized here and
the working-directory code published, then the cluster's live code link made, through
which its processes import that code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from packsync.codesync.live import LiveCode
from packsync.model import PlanOptions
from packsync.pipeline import Prepared, lock_environment, prepare_local
from packsync.progress import Reporter
from packsync.scan.workdir import CodeRules


@dataclass(frozen=True, kw_only=True, slots=True)
class LaunchSettings:
    """What the user chose for the environment and its code."""

    options: PlanOptions
    code_rules: CodeRules
    cache_dir: str | os.PathLike[str] | None = None
    store: str | None = None
    python: str | None = None  # the interpreter environments are made from


def prepare_here(settings: LaunchSettings, reporter: Reporter) -> tuple[Prepared, LiveCode]:
    """The environment locked and ready on this machine, and the cluster's live code."""
    locked = lock_environment(
        options=settings.options, cache=settings.cache_dir, store=settings.store,
        reporter=reporter,
    )
    prepared = prepare_local(
        locked, python=settings.python, code_rules=settings.code_rules, reporter=reporter
    )
    live = LiveCode(
        roots=locked.snapshot.code_paths,
        rules=settings.code_rules,
        store=locked.store,
        cache=locked.cache,
        bundle=prepared.code,
        version_dir=prepared.code_dir,
    )
    return prepared, live
