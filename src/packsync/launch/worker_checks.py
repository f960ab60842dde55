"""Each worker of a ``Cluster`` checked against the lock once, when it first appears.

At launch a worker whose environment ``fail_on`` refuses stops the cluster. One that
``scale()`` or ``adapt()`` adds to a running cluster cannot stop it: it is retired
instead (its tasks would run with other code than the lock's), with an error logged and
recorded in ``verification``. The comparison itself is ``packsync.launch.verify``'s.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from distributed.versions import VersionMismatchWarning

from packsync.launch.hosts.placement import HostsLaunch
from packsync.launch.verify import Verification, WorkerVerifier
from packsync.lock.lockfile import Lock

logger = logging.getLogger(__name__)

HostOf = Callable[[Any], str]


class WorkerChecks:
    """The checks of one cluster: off (``verify=False``), or one verifier made on first use."""

    def __init__(self, *, enabled: bool, fail_on: str) -> None:
        self.enabled = enabled
        self.fail_on = fail_on
        self.verifier: WorkerVerifier | None = None

    @property
    def verification(self) -> Verification:
        """What the checks found: differences and retired workers (empty before any)."""
        return self.verifier.verification if self.verifier is not None else Verification()

    def _ready(self, lock: Lock | None, scheduler_comm: Any) -> WorkerVerifier | None:
        if not self.enabled or lock is None or scheduler_comm is None:
            return None
        if self.verifier is None:
            # this check covers Dask's own ten-package one, and says more
            warnings.filterwarnings("ignore", category=VersionMismatchWarning)
            self.verifier = WorkerVerifier(lock, self.fail_on)
        return self.verifier

    async def at_launch(self, lock: Lock | None, scheduler_comm: Any, host_of: HostOf) -> None:
        """Check the workers not checked yet; a refused one raises ``LaunchError``."""
        verifier = self._ready(lock, scheduler_comm)
        if verifier is not None:
            await verifier.check(scheduler_comm, host_of)

    async def refused_joined(
        self, lock: Lock | None, scheduler_comm: Any, host_of: HostOf
    ) -> list[Any]:
        """The names of the workers that joined and that ``fail_on`` refuses (to retire)."""
        verifier = self._ready(lock, scheduler_comm)
        if verifier is None:
            return []
        try:
            retire = await verifier.check_joined(scheduler_comm, host_of)
        except Exception:  # a report that cannot be asked for must not break scaling
            logger.exception("could not verify the workers that joined")
            return []
        return list(retire.values())


def host_namer(
    hosts: HostsLaunch | None, worker_spec: Mapping[Any, Mapping[str, Any]]
) -> HostOf:
    """How checks name the host of a worker, by the worker's name in ``worker_spec``."""

    def host_of(name: Any) -> str:
        if hosts is None:
            return "this machine"
        return hosts.host_of(worker_spec.get(name))

    return host_of
