"""packsync: the Python environment you run in, replicated onto every machine of a Dask cluster."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from packsync.errors import (
    BuildError,
    IntegrityError,
    LaunchError,
    LockError,
    MaterializeError,
    PacksyncError,
    PlanError,
    ScanError,
    StoreError,
)
from packsync.lock.lockfile import Lock
from packsync.materialize.environments import materialize
from packsync.model import Plan, PlanOptions, Snapshot, Target
from packsync.pipeline import lock_environment
from packsync.plan.rules import MANDATORY, plan
from packsync.scan import scan

if TYPE_CHECKING:
    from packsync.launch.cluster import Cluster


def __getattr__(name: str) -> Any:
    # distributed is heavy to import; `packsync scan` should not pay for it
    if name == "Cluster":
        try:
            from packsync.launch.cluster import Cluster
        except ImportError as error:
            if error.name in MANDATORY:
                plan(scan())  # raises the PlanError that names every missing package
            raise
        return Cluster
    raise AttributeError(f"module 'packsync' has no attribute {name!r}")

__all__ = [
    "MANDATORY",
    "BuildError",
    "Cluster",
    "IntegrityError",
    "LaunchError",
    "Lock",
    "LockError",
    "MaterializeError",
    "PacksyncError",
    "Plan",
    "PlanError",
    "PlanOptions",
    "ScanError",
    "Snapshot",
    "StoreError",
    "Target",
    "lock_environment",
    "materialize",
    "plan",
    "scan",
]
