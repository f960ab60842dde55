"""Where a hosts cluster puts its scheduler and workers (packsync.launch.hosts.placement)."""

from __future__ import annotations

import pytest

from packsync.launch import layout
from packsync.launch.hosts.placement import HostsLaunch
from packsync.launch.hosts.prepare import PreparedHost
from packsync.launch.hosts.processes import RemoteScheduler, RemoteWorker
from packsync.launch.hosts.spec import HostSpec
from packsync.launch.local import EnvScheduler


def prepared(spec: HostSpec) -> PreparedHost:
    """A host as prepare_hosts leaves it (placement never uses its connection)."""
    return PreparedHost(
        spec=spec, connection=None, host_python="/usr/bin/python3",  # type: ignore[arg-type]
        python_version="3.11.7", env_python="/cache/envs/x/bin/python", link="/cache/live/1",
        cache="/cache", cache_hit=True, sent_bytes=0,
    )


def launch(hosts, **kwargs) -> HostsLaunch:
    result = HostsLaunch(hosts, **kwargs)
    result.prepared = [prepared(spec) for spec in result.specs]
    return result


def specs(n_workers: int, host: str = "127.0.0.1"):
    template = layout.worker_template(threads=1, memory_limit="auto", host=host, nanny=True,
                                      extra=None)
    scheduler = layout.scheduler_spec(layout.scheduler_options(host, None, None),
                                      in_process=False)
    return scheduler, layout.first_workers(template, n_workers), template


def test_workers_go_round_robin_and_the_scheduler_stays_on_the_client():
    hosts = launch(["10.0.0.1", "bob@10.0.0.2:2200"])
    scheduler, workers, template = specs(3)
    hosts.place(scheduler, workers, template)
    assert scheduler["cls"] is EnvScheduler
    assert [w["options"]["target"].name for w in workers.values()] == [
        "10.0.0.1", "bob@10.0.0.2:2200", "10.0.0.1"]
    assert all(w["cls"] is RemoteWorker for w in workers.values())
    assert template["cls"] is RemoteWorker
    # a worker listens on its host's address, not on the client's loopback
    assert [w["options"]["host"] for w in workers.values()] == [
        "10.0.0.1", "10.0.0.2", "10.0.0.1"]
    # flat, as SpecCluster reads them for scale(cores=, memory=)
    assert all(w["options"]["nthreads"] == 1 for w in workers.values())


def test_scheduler_on_the_first_host():
    hosts = launch(["10.0.0.1", "10.0.0.2"], scheduler_on="first-host")
    assert hosts.remote_scheduler
    scheduler, workers, template = specs(2)
    hosts.place(scheduler, workers, template)
    assert scheduler["cls"] is RemoteScheduler
    assert scheduler["options"]["target"].name == "10.0.0.1"
    assert scheduler["options"]["options"]["host"] == "10.0.0.1"


def test_a_worker_added_later_goes_to_the_host_with_the_fewest():
    hosts = launch(["a", "b", "c"])
    scheduler, workers, template = specs(4)
    hosts.place(scheduler, workers, template)  # a, b, c, a
    assert hosts.next_worker(template, workers)["options"]["target"].name == "b"
    workers[4] = hosts.next_worker(template, workers)
    workers[5] = hosts.next_worker(template, workers)
    assert workers[5]["options"]["target"].name == "c"
    del workers[0], workers[3]  # scale() down: both of a's
    assert hosts.next_worker(template, workers)["options"]["target"].name == "a"


def test_loopback_hosts_keep_a_user_chosen_worker_address():
    hosts = launch(["127.0.0.1", "localhost"])
    scheduler, workers, template = specs(2, host="127.0.0.2")
    hosts.place(scheduler, workers, template)
    assert [w["options"]["host"] for w in workers.values()] == [
        "127.0.0.2", "127.0.0.2"]


def test_scheduler_address_every_host_reaches():
    assert HostsLaunch(["127.0.0.1", "localhost"]).scheduler_host() == "127.0.0.1"


def test_host_of_names_the_worker_host():
    hosts = launch(["alice@10.0.0.1:2222"])
    scheduler, workers, template = specs(1)
    hosts.place(scheduler, workers, template)
    assert hosts.host_of(workers[0]) == "alice@10.0.0.1:2222"
    assert hosts.host_of(None) == "unknown host"
    assert hosts.host_of({"options": {}}) == "this machine"


@pytest.mark.parametrize(
    ("hosts", "kwargs", "message"),
    [
        ([], {}, "names no host"),
        (["a", "a"], {}, "hosts named twice: a"),
        (["a"], {"scheduler_on": "everywhere"}, "is not 'client' or 'first-host'"),
        (["a", "b"], {"connect_options": [{}]}, "connect_options has 1 entries for 2 hosts"),
    ],
)
def test_bad_hosts_are_refused(hosts, kwargs, message):
    with pytest.raises(ValueError, match=message):
        HostsLaunch(hosts, **kwargs)


def test_a_nanny_on_a_host_gets_dask_hash_seed_whatever_the_host_sets():
    target = prepared(HostSpec(address="10.0.0.1"))
    nanny = RemoteWorker("tls://10.0.0.9:8786", target=target, name=0)
    # the forkserver fixes the seed of every worker it forks: sent as a setting, not a
    # default the host's own PYTHONHASHSEED=0 would win over
    assert nanny.environment()["PYTHONHASHSEED"] == "6640"
    assert "PYTHONHASHSEED" not in nanny.environment_defaults()
    assert nanny.environment_defaults()["OMP_NUM_THREADS"] == "1"  # the host's value wins
    assert "forkserver" in nanny.command()[2]
    alone = RemoteWorker("tls://10.0.0.9:8786", target=target, name=1, nanny=False)
    assert "PYTHONHASHSEED" not in alone.environment() and alone.environment_defaults() == {}


def test_a_nanny_on_a_host_keeps_a_start_method_the_user_chose():
    import dask.config

    target = prepared(HostSpec(address="10.0.0.1"))
    with dask.config.set({"distributed.worker.multiprocessing-method": "fork"}):
        nanny = RemoteWorker("tls://10.0.0.9:8786", target=target, name=0)
        assert nanny.environment_defaults() == {}
        assert "PYTHONHASHSEED" not in nanny.environment()
