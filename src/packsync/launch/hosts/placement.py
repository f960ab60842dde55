"""What ``Cluster(hosts=...)`` adds to a launch: hosts prepared first, processes placed on them.

The scheduler runs on the client (in the locally materialized environment) or on the
first host; workers are spread over the hosts, the ones ``scale()`` and ``adapt()``
add going to the host with the fewest.

``memory_limit="auto"`` is worked out here, per host, from what its probe said, as each
worker would work it out itself (the host's memory times the worker's share of its
cores): ``scale(memory=)`` and ``adapt(maximum_memory=)`` need a number. The template
that ``SpecCluster`` reads for them gets the smallest host's, so that scaling to a
memory gives at least that much.
"""

from __future__ import annotations

import ipaddress
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from packsync.launch.hosts.prepare import (
    HOST_INSTALLS,
    Connecting,
    HostInstall,
    Payload,
    PreparedHost,
    abandon,
    close_hosts,
    connect_all,
    prepare_hosts,
)
from packsync.launch.hosts.processes import RemoteScheduler, RemoteWorker
from packsync.launch.hosts.spec import HostLike, HostSpec, parse_hosts
from packsync.launch.processes import dask_options
from packsync.pipeline import Prepared
from packsync.progress import Reporter

logger = logging.getLogger(__name__)

SchedulerOn = Literal["client", "first-host"]


class HostsLaunch:
    """The SSH side of one cluster: its hosts, prepared once, and where each process runs."""

    def __init__(
        self,
        hosts: Sequence[HostLike],
        *,
        connect_options: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        python: str | Sequence[str | None] | None = None,
        cache_dir: str | None = None,
        scheduler_on: SchedulerOn = "client",
        shared_store: str | None = None,
        install: HostInstall = "artifact",
        builder: str = "client",
    ) -> None:
        if scheduler_on not in ("client", "first-host"):
            raise ValueError(f"scheduler_on={scheduler_on!r} is not 'client' or 'first-host'")
        if install not in HOST_INSTALLS:
            raise ValueError(f"host_install={install!r} is not 'artifact' or 'index'")
        self.install: HostInstall = install
        self.builder = builder
        self.specs: tuple[HostSpec, ...] = parse_hosts(
            hosts, connect_options=connect_options, python=python, cache_dir=cache_dir
        )
        if not self.specs:
            raise ValueError("hosts= names no host")
        self.scheduler_on = scheduler_on
        self.shared_store = shared_store
        self.prepared: list[PreparedHost] = []
        self._connecting: Connecting | None = None
        self._auto_memory = False  # memory_limit="auto": each host's worked out here

    @property
    def remote_scheduler(self) -> bool:
        return self.scheduler_on == "first-host"

    def scheduler_host(self) -> str:
        """The address the client's scheduler listens on so that every host reaches it."""
        if all(_loopback(s.address) for s in self.specs):
            return "127.0.0.1"
        from distributed.utils import get_ip

        return str(get_ip(self.specs[0].address))

    def connect(self) -> None:
        """Start connecting to every host, while this machine prepares the environment."""
        if self._connecting is None:
            self._connecting = connect_all(self.specs)

    async def abandon(self) -> None:
        """Close the connections ``connect`` opened, for a launch that goes no further."""
        connecting, self._connecting = self._connecting, None
        if connecting is not None:
            await abandon(connecting)

    async def prepare(self, prepared: Prepared, reporter: Reporter) -> list[PreparedHost]:
        locked = prepared.locked
        payload = Payload(
            lock=locked.lock,
            store=locked.store,
            code=prepared.code,
            uv_env=locked.settings.uv_environment(),
            shared_store=self.shared_store,
            environment=prepared.environment,
            cache=locked.cache,
            install=self.install,
            builder=self.builder,
        )
        connecting, self._connecting = self._connecting, None
        self.prepared = await prepare_hosts(self.specs, payload, reporter=reporter,
                                            connecting=connecting)
        return self.prepared

    def place(
        self,
        scheduler_spec: dict[str, Any],
        worker_spec: dict[Any, dict[str, Any]],
        new_spec: dict[str, Any],
    ) -> None:
        """Put the scheduler and the first workers on prepared hosts."""
        if self.remote_scheduler:
            options = dict(scheduler_spec["options"]["options"])
            options["host"] = self.prepared[0].spec.address
            scheduler_spec["cls"] = RemoteScheduler
            scheduler_spec["options"] = {"target": self.prepared[0], "options": options}
        template = new_spec["options"]
        threads = template.get("nthreads", 1)
        known = [m for m in (auto_memory(h, threads) for h in self.prepared) if m]
        self._auto_memory = template.get("memory_limit") == "auto" and bool(known)
        if self._auto_memory:
            template["memory_limit"] = min(known)
        new_spec["cls"] = RemoteWorker
        for index, spec in enumerate(worker_spec.values()):
            spec["cls"] = RemoteWorker
            spec["options"] = self._worker_options(spec["options"], self.prepared[
                index % len(self.prepared)])

    def next_worker(
        self, template: dict[str, Any], worker_spec: Mapping[Any, Any]
    ) -> dict[str, Any]:
        """A spec for one more worker, on the host that runs the fewest."""
        load = Counter(
            s["options"]["target"].name for s in worker_spec.values() if "target" in s["options"]
        )
        target = min(self.prepared, key=lambda h: (load[h.name], self.prepared.index(h)))
        return {"cls": RemoteWorker, "options": self._worker_options(template["options"], target)}

    def _worker_options(self, options: Mapping[str, Any],
                        target: PreparedHost) -> dict[str, Any]:
        """A worker's flat spec options, on ``target`` (local process options dropped)."""
        result = dask_options(options)
        if result.get("host") in (None, "127.0.0.1") or not _loopback(target.spec.address):
            result["host"] = target.spec.address
        if self._auto_memory:
            result["memory_limit"] = auto_memory(target, result.get("nthreads", 1)) or "auto"
        return {**result, "target": target, "nanny": options.get("nanny", True)}

    def host_of(self, spec: Mapping[str, Any] | None) -> str:
        if spec is None:
            return "unknown host"
        target = spec.get("options", {}).get("target")
        return target.name if isinstance(target, PreparedHost) else "this machine"

    async def close(self) -> None:
        hosts, self.prepared = self.prepared, []
        await close_hosts(hosts)


def auto_memory(host: PreparedHost, threads: int) -> int:
    """What ``memory_limit="auto"`` gives a worker of ``threads`` threads on ``host``, as
    Dask's worker computes it there; 0 when the host's memory is unknown."""
    if not host.memory or not host.cores:
        return 0
    return int(host.memory * min(1.0, threads / host.cores))


def _loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
