"""packsync: the Python environment you run in, replicated onto every machine of a Dask cluster.

``import packsync`` loads only the errors: every other public name is imported on first
use (``packsync.Cluster`` imports ``distributed``, ``lock_environment`` the whole
pipeline), so a script that imports packsync pays for what it calls, nothing more.
"""

from __future__ import annotations

import importlib
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

if TYPE_CHECKING:
    from packsync.launch.cluster import Cluster
    from packsync.launch.jobqueue import jobqueue
    from packsync.lock.lockfile import Lock
    from packsync.materialize.environments import materialize
    from packsync.model import Plan, PlanOptions, Snapshot, Target
    from packsync.pipeline import lock_environment
    from packsync.plan.rules import MANDATORY, plan
    from packsync.scan import scan

# public name -> the module that defines it
_LAZY = {
    "Cluster": "packsync.launch.cluster",
    "Lock": "packsync.lock.lockfile",
    "MANDATORY": "packsync.plan.rules",
    "Plan": "packsync.model",
    "PlanOptions": "packsync.model",
    "Snapshot": "packsync.model",
    "Target": "packsync.model",
    "lock_environment": "packsync.pipeline",
    "jobqueue": "packsync.launch.jobqueue",
    "materialize": "packsync.materialize.environments",
    "plan": "packsync.plan.rules",
    "scan": "packsync.scan",
}

# ``packsync.materialize``, ``.plan`` and ``.scan`` name a stage's function and its
# subpackage. Importing a module of a subpackage sets the subpackage as an attribute of
# ``packsync`` when the subpackage is not imported yet, so the (light) subpackages are
# imported here and their attributes dropped: from then on the names are the functions,
# found by ``__getattr__``, whatever is imported later.
for _stage in ("materialize", "plan", "scan"):
    importlib.import_module(f"packsync.{_stage}")
    del globals()[_stage]
del _stage


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'packsync' has no attribute {name!r}")
    try:
        value = getattr(importlib.import_module(module), name)
    except ImportError as error:
        if name == "Cluster":
            from packsync.plan.rules import MANDATORY, plan
            from packsync.scan import scan

            if error.name in MANDATORY:
                plan(scan())  # raises the PlanError that names every missing package
        raise
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


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
    "jobqueue",
    "lock_environment",
    "materialize",
    "plan",
    "scan",
]
