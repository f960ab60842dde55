"""``memory_limit="auto"`` on SSH hosts is worked out per host from its probe, as the
worker there would work it out, so that ``scale(memory=)`` and ``adapt()`` by memory
have a number to go by."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import math
from typing import Any

from dask.system import CPU_COUNT
from dask.utils import parse_bytes
from distributed.system import MEMORY_LIMIT
from distributed.worker_memory import parse_memory_limit

from packsync.hostside import main, protocol, resources
from packsync.launch import layout
from packsync.launch.hosts.placement import HostsLaunch
from tests.unit.test_launch_placement import prepared

GB = 10**9


def test_the_probe_says_memory_and_cores_as_dask_counts_them(tmp_path: Any,
                                                             capsys: Any) -> None:
    header: protocol.Header = {"version": protocol.VERSION, "action": "probe",
                               "cache": str(tmp_path), "env_id": "e" * 32}
    assert main.serve(io.BytesIO(json.dumps(header).encode() + b"\n")) == 0
    probe = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert probe["memory"] == resources.memory() == MEMORY_LIMIT
    assert probe["cores"] == resources.cores() == CPU_COUNT
    own = parse_memory_limit("auto", 1, probe["cores"], logger=logging.getLogger("test"))
    assert own == int(probe["memory"] * min(1, 1 / probe["cores"]))


def hosts_with(memory: dict[str, tuple[int, int]]) -> HostsLaunch:
    """Two prepared hosts with (memory, cores) as their probes said."""
    launch = HostsLaunch(list(memory))
    launch.prepared = [dataclasses.replace(prepared(spec), memory=memory[spec.name][0],
                                           cores=memory[spec.name][1])
                       for spec in launch.specs]
    return launch


def place(launch: HostsLaunch, n_workers: int, threads: int,
          memory_limit: Any = "auto") -> tuple[dict[Any, Any], dict[str, Any]]:
    template = layout.worker_template(threads=threads, memory_limit=memory_limit,
                                      host="127.0.0.1", nanny=True, extra=None)
    scheduler = layout.scheduler_spec(layout.scheduler_options("127.0.0.1", None, None),
                                      in_process=False)
    workers = layout.first_workers(template, n_workers)
    launch.place(scheduler, workers, template)
    return workers, template


def test_auto_is_each_hosts_memory_times_the_workers_share_of_its_cores() -> None:
    launch = hosts_with({"10.0.0.1": (16 * GB, 4), "10.0.0.2": (8 * GB, 8)})
    workers, template = place(launch, 2, threads=2)
    assert [w["options"]["memory_limit"] for w in workers.values()] == [8 * GB, 2 * GB]
    # what SpecCluster's scale(memory=) divides by: the smallest, so the total is enough
    assert template["options"]["memory_limit"] == 2 * GB
    assert math.ceil(parse_bytes("6GB") / parse_bytes(template["options"]["memory_limit"])) == 3
    # a worker scale() adds gets the memory of the host it goes to
    added = launch.next_worker(template, {**workers, 2: launch.next_worker(template, workers)})
    assert added["options"]["target"].name == "10.0.0.2"
    assert added["options"]["memory_limit"] == 2 * GB


def test_a_given_limit_and_unknown_memory_are_left_as_they_are() -> None:
    launch = hosts_with({"10.0.0.1": (16 * GB, 4), "10.0.0.2": (8 * GB, 8)})
    workers, template = place(launch, 2, threads=1, memory_limit="3GB")
    assert [w["options"]["memory_limit"] for w in workers.values()] == ["3GB", "3GB"]
    unknown = hosts_with({"10.0.0.1": (0, 0), "10.0.0.2": (0, 0)})
    workers, template = place(unknown, 2, threads=1)
    assert template["options"]["memory_limit"] == "auto"
    assert [w["options"]["memory_limit"] for w in workers.values()] == ["auto", "auto"]
