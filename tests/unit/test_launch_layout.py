"""What Cluster's arguments make of its processes: counts, threads, specs, process options."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from distributed.scheduler import Scheduler

from packsync.codesync.plugin import LINK_VARIABLE
from packsync.launch import layout
from packsync.launch.hosts.placement import HostsLaunch
from packsync.launch.local import EnvScheduler, EnvWorker


@pytest.mark.parametrize(
    ("n_workers", "threads", "cpus", "expected"),
    [
        (None, None, 8, (4, 2)),  # LocalCluster's own split of the cores
        (None, None, 2, (2, 1)),
        (None, 4, 8, (2, 4)),
        (None, 16, 8, (1, 16)),  # never fewer than one worker
        (None, 0, 8, (8, 0)),  # 0 threads: as many workers as cores, as before
        (3, None, 8, (3, 3)),  # rounded up, as LocalCluster does
        (2, None, 3, (2, 2)),
        (16, None, 8, (16, 1)),  # never fewer than one thread
        (0, None, 8, (0, 8)),
        (2, 3, 8, (2, 3)),  # both given: as given
    ],
)
def test_workers_and_threads_follow_localcluster(n_workers, threads, cpus, expected):
    assert layout.workers_and_threads(n_workers, threads, cpu_count=cpus) == expected


@pytest.mark.parametrize(("n_workers", "threads"), [(-1, None), (None, -2), (1.5, None),
                                                    (2, "many")])
def test_impossible_counts_are_refused_naming_the_argument(n_workers, threads):
    with pytest.raises(ValueError, match="n_workers=|threads_per_worker="):
        layout.workers_and_threads(n_workers, threads, cpu_count=4)


def test_auto_memory_is_this_machines_memory_shared_by_its_workers():
    from distributed.system import MEMORY_LIMIT

    assert layout.memory_per_worker("auto", 3, local=True) == pytest.approx(
        MEMORY_LIMIT / 3, rel=0.01)
    assert layout.memory_per_worker("auto", 3, local=False) == "auto"  # each host's own
    assert layout.memory_per_worker("4GB", 3, local=True) == "4GB"
    assert layout.memory_per_worker("auto", 0, local=True) == "auto"


def test_hosts_default_to_one_single_threaded_worker_each():
    hosts = HostsLaunch(["127.0.0.1", "localhost:2222"])
    assert layout.on_hosts(hosts, None, None, "127.0.0.1") == (2, 1, "127.0.0.1")
    assert layout.on_hosts(hosts, 5, 3, "127.0.0.1") == (5, 3, "127.0.0.1")
    assert layout.on_hosts(hosts, None, None, "0.0.0.0") == (2, 1, "0.0.0.0")  # the user's


def test_scheduler_in_process_unless_asked_or_on_a_host():
    assert layout.scheduler_in_process(None, remote=False, default=False)
    assert not layout.scheduler_in_process(None, remote=False, default=True)  # Dask config
    assert layout.scheduler_in_process(False, remote=False, default=True)  # argument wins
    assert not layout.scheduler_in_process(True, remote=False, default=False)
    assert not layout.scheduler_in_process(False, remote=True, default=False)


def test_scheduler_spec_shares_its_options():
    options = layout.scheduler_options("127.0.0.1", ":0", {"idle_timeout": "1h"})
    assert options == {"host": "127.0.0.1", "port": 0, "dashboard_address": ":0",
                       "idle_timeout": "1h"}
    here = layout.scheduler_spec(options, in_process=True)
    env = layout.scheduler_spec(options, in_process=False)
    assert here["cls"] is Scheduler and here["options"] is options
    assert env["cls"] is EnvScheduler and env["options"]["options"] is options
    options["port"] = 8786  # the early start fixes the port after the specs are made
    assert env["options"]["options"]["port"] == 8786


def test_user_scheduler_options_override_ours():
    options = layout.scheduler_options("127.0.0.1", ":8787", {"port": 9000, "host": "0.0.0.0"})
    assert (options["host"], options["port"]) == ("0.0.0.0", 9000)


def test_worker_template_threads_memory_and_user_options():
    template = layout.worker_template(threads=2, memory_limit="2GiB", host="127.0.0.1",
                                      nanny=False, extra={"resources": {"GPU": 1}})
    assert template["cls"] is EnvWorker
    # flat, as SpecCluster reads nthreads and memory_limit for scale(cores=, memory=)
    assert template["options"] == {
        "nanny": False, "nthreads": 2, "memory_limit": "2GiB", "host": "127.0.0.1",
        "dashboard_address": None, "resources": {"GPU": 1},
    }
    auto = layout.worker_template(threads=1, memory_limit="auto", host="h", nanny=True,
                                  extra={"memory_limit": 0})
    assert auto["options"]["memory_limit"] == 0  # worker_options win


def test_first_workers_are_named_by_number_with_options_of_their_own():
    template = layout.worker_template(threads=1, memory_limit="auto", host="127.0.0.1",
                                      nanny=True, extra=None)
    workers = layout.first_workers(template, 3)
    assert list(workers) == [0, 1, 2]
    workers[0]["options"]["python"] = "/env/bin/python"
    assert "python" not in workers[1]["options"] and "python" not in template["options"]
    assert layout.first_workers(template, 0) == {}


def test_process_options_reach_workers_and_an_environment_scheduler(tmp_path):
    link = tmp_path / "live"
    options = layout.process_options(Path("/env/bin/python"), link)
    assert options["python"] == "/env/bin/python" and options["cwd"] == os.getcwd()
    assert options["environ"]["PYTHONPATH"] == str(link) == options["environ"][LINK_VARIABLE]

    template = layout.worker_template(threads=1, memory_limit="auto", host="127.0.0.1",
                                      nanny=True, extra=None)
    workers = layout.first_workers(template, 2)
    in_env = layout.scheduler_spec(layout.scheduler_options("127.0.0.1", None, None),
                                   in_process=False)
    in_process = layout.scheduler_spec(layout.scheduler_options("127.0.0.1", None, None),
                                       in_process=True)
    for scheduler in (in_env, in_process):
        layout.with_process_options(options, scheduler=scheduler, template=template,
                                    workers=workers)
    assert in_env["options"]["python"] == "/env/bin/python"
    assert "python" not in in_process["options"]  # Dask's own Scheduler takes no interpreter
    assert template["options"]["python"] == "/env/bin/python"
    assert all(w["options"]["environ"] is options["environ"] for w in workers.values())
