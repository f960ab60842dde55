"""The one place packsync uses ``SpecCluster``'s private API (``distributed.deploy.spec``).

``SpecCluster`` offers no public hook for what ``packsync.Cluster`` adds to a launch
(work before the scheduler starts, workers started before it listens, a check of each
worker that joins), so it overrides private steps. Every such use is in this module,
with what it relies on, so that a new ``distributed`` release is checked here (and by
``tests/unit/test_launch_spec_internals.py``) rather than across the launch code:

- ``_start`` (starts the scheduler, opens ``scheduler_comm``, and on failure closes the
  cluster and raises ``RuntimeError`` from the cause), ``_close``, and
  ``_correct_state_internal`` (opens and closes workers to match ``worker_spec``, under
  ``_lock``) are overridden: each hands over to a hook of the subclass, whose default
  is ``SpecCluster``'s own step;
- ``_created`` (the processes ``_close`` expects closed) and each worker's ``_cluster``
  weak reference are set for workers started outside ``_correct_state_internal``;
- ``_repr_html_`` of ``distributed.deploy.Cluster`` (its notebook widget) is shown below
  the subclass's own summary.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

from distributed.core import Status
from distributed.deploy.spec import ProcessInterface, SpecCluster

from packsync.errors import PacksyncError


class SpecClusterInternals(SpecCluster):
    """``SpecCluster`` with its private steps turned into hooks and helpers of our own."""

    # --- SpecCluster's private steps, each handed to a hook --------------------------------

    async def _start(self) -> None:
        await self._launch()

    async def _close(self) -> None:
        await self._shut_down()

    async def _correct_state_internal(self) -> None:
        await self._match_workers()

    def _repr_html_(self, cluster_status: Any = None) -> str:
        dask_widget: str = super()._repr_html_(cluster_status=cluster_status)
        return self._summary_html() + dask_widget

    # --- hooks for the subclass: SpecCluster's own behaviour by default ---------------------

    async def _launch(self) -> None:
        """Start the cluster (``await cluster``, the constructor, ``async with``)."""
        await self._dask_start()

    async def _shut_down(self) -> None:
        """Close the cluster."""
        await self._dask_close()

    async def _match_workers(self) -> None:
        """Make the workers match ``worker_spec`` (after the start, ``scale()``, ``adapt()``)."""
        await self._dask_match_workers()

    def _summary_html(self) -> str:
        """HTML shown above Dask's own widget in a notebook."""
        return ""

    # --- SpecCluster's steps, for the hooks to call ------------------------------------------

    async def _dask_start(self) -> None:
        """Start the scheduler and connect to it.

        ``SpecCluster`` wraps a failure in ``RuntimeError("Cluster failed to start")``
        (after closing the cluster); a packsync error is raised as itself, as it names
        the package, host or file at fault.
        """
        try:
            await super()._start()
        except RuntimeError as error:
            if isinstance(error.__cause__, PacksyncError):
                raise error.__cause__ from None
            raise

    async def _dask_close(self) -> None:
        """Close every worker, then the scheduler."""
        await super()._close()

    async def _dask_match_workers(self) -> None:
        """Open workers ``worker_spec`` names and close the others (without our hook)."""
        await super()._correct_state_internal()

    async def _close_failed(self) -> None:
        """Mark a start that failed after the scheduler was made, and close everything."""
        self.status = Status.failed
        await self._close()

    def _adopt_workers(self, workers: Mapping[Any, ProcessInterface]) -> None:
        """Take running workers started outside ``SpecCluster`` as ``worker_spec``'s own:
        ``scale()`` then closes them and ``close()`` waits for them."""
        for name, worker in workers.items():
            worker._cluster = weakref.ref(self)  # type: ignore[attr-defined]
            self._created.add(worker)
            self.workers[name] = worker
