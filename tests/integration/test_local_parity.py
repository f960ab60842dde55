"""packsync.Cluster where Dask code looks, as distributed.LocalCluster behaves there.

Scaling and adapting by cores and memory, the objects in ``cluster.workers``, start
failures that Dask code catches, and options that are not JSON (a ``Security``, worker
plugins) reaching the scheduler and workers. One client venv for the module: each test
starts clusters of its own from it.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.support.peers import PEER
from tests.support.venvs import ClientEnv, make_client

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client_env(tmp_path_factory: pytest.TempPathFactory) -> ClientEnv:
    return make_client(Path(tmp_path_factory.mktemp("parity")))


def test_scale_and_adapt_by_cores_and_memory_and_what_workers_expose(client_env: ClientEnv):
    result = client_env.json_run("""
        import json, time
        import psutil, packsync

        def settle(cluster, client, n):
            client.wait_for_workers(n)
            deadline = time.monotonic() + 120
            while len(cluster.workers) != n or len(client.scheduler_info()["workers"]) != n:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{len(cluster.workers)} workers, not {n}")
                time.sleep(0.1)

        out = {}
        with packsync.Cluster(n_workers=2, threads_per_worker=2, memory_limit="1GB",
                              dashboard_address=None) as cluster:
            with cluster.get_client() as client:
                cluster.scale(1)  # one nanny of the shared process closed alone, over TLS
                settle(cluster, client, 1)
                cluster.scale(cores=6)  # 2 threads each: 3 workers
                settle(cluster, client, 3)
                out["by_cores"] = len(cluster.workers)
                cluster.scale(memory="2GB")  # 1 GB each: 2 workers
                settle(cluster, client, 2)
                out["by_memory"] = len(cluster.workers)
                info = client.scheduler_info()["workers"]
                out["scheduler"] = {
                    "nannies": sorted(w["nanny"] for w in info.values()),
                    "workers": sorted(info),
                    "nthreads": sorted(w["nthreads"] for w in info.values()),
                }
                out["workers"] = [
                    {"type": type(w).__name__, "address": w.address,
                     "worker_address": w.worker_address, "nthreads": w.nthreads,
                     "memory_limit": w.memory_limit, "alive": psutil.pid_exists(w.process.pid)}
                    for w in cluster.workers.values()
                ]
                cluster.scale(1)
                settle(cluster, client, 1)
                adaptive = cluster.adapt(minimum_cores=4, maximum_memory="2GB", interval="200ms")
                settle(cluster, client, 2)  # at least 4 cores, at most 2 GB: 2 workers
                adaptive.stop()
                out["adapted"] = len(cluster.workers)
        print(json.dumps(out))
    """)
    assert result["by_cores"] == 3 and result["by_memory"] == 2 and result["adapted"] == 2
    seen = result["scheduler"]
    assert sorted(w["address"] for w in result["workers"]) == seen["nannies"]
    assert all(w["nthreads"] == 2 and w["memory_limit"] == "1GB" and w["alive"]
               for w in result["workers"])
    assert seen["nthreads"] == [2, 2]
    # a worker started by scale() announces its worker's address; one of the first
    # workers, whose nannies share a process, has it from the scheduler
    assert {w["type"] for w in result["workers"]} == {"SharedWorker", "EnvWorker"}
    assert sorted(w["worker_address"] for w in result["workers"]) == seen["workers"]


def test_start_failures_are_what_dask_code_catches(client_env: ClientEnv):
    result = client_env.json_run("""
        import json, packsync
        import packsync.launch.processes as processes

        out = {}
        try:
            packsync.Cluster(n_workers=1, dashboard_address=None,
                             worker_options={"no_such_option": 1})
        except RuntimeError as error:  # as Dask's "Nanny failed to start"
            out["failed"] = [isinstance(error, packsync.LaunchError), str(error)]
        processes.START_TIMEOUT = 0.001  # no process is ready that soon
        try:
            packsync.Cluster(n_workers=1, dashboard_address=None)
        except TimeoutError as error:  # as a start that outlasts Dask's death_timeout
            out["timed_out"] = [isinstance(error, packsync.LaunchError), str(error)]
        print(json.dumps(out))
    """)
    launch_error, message = result["failed"]
    assert launch_error and "exited before it was ready" in message
    assert "no_such_option" in message  # packsync's message: the tail of the worker's log
    launch_error, message = result["timed_out"]
    assert launch_error and "was not ready within" in message


PLUGINS = """
from distributed import WorkerPlugin


class Tags(WorkerPlugin):
    name = "tags"

    def __init__(self, tags):
        self.tags = set(tags)  # not JSON

    def setup(self, worker):
        worker.tags = sorted(self.tags)
"""


def test_a_security_and_plugins_reach_the_scheduler_and_every_worker(client_env: ClientEnv):
    (client_env.workdir / "myplugins.py").write_text(PLUGINS)
    result = client_env.json_run("""
        import json
        import packsync
        from distributed import Client, Security
        from myplugins import Tags

        security = Security.temporary()
        out = {}
        with packsync.Cluster(n_workers=2, threads_per_worker=1, dashboard_address=None,
                              security=security, scheduler_process=True,
                              worker_options={"plugins": {Tags({"a", "b"})}}) as cluster:
            with Client(cluster) as client:
                out["tags"] = list(client.run(lambda dask_worker: dask_worker.tags).values())
                out["security"] = client.run(
                    lambda dask_worker: dask_worker.security.tls_ca_file
                    == security.tls_ca_file)
            out["address"] = cluster.scheduler_address
            out["same_security"] = cluster.security is security
        try:  # a set straight in the options is refused by Dask, not lost on the way
            packsync.Cluster(n_workers=1, dashboard_address=None,
                             worker_options={"resources": {"GPU"}})
        except Exception as error:
            out["bad_option"] = str(error)
        print(json.dumps(out))
    """)
    assert result["tags"] == [["a", "b"], ["a", "b"]]
    assert all(result["security"].values()) and result["same_security"]
    assert result["address"].startswith("tls://")
    assert "JSON serializable" not in result["bad_option"]


@pytest.mark.attack("open scheduler")
def test_tls_by_default_refuses_a_peer_without_the_credentials(client_env: ClientEnv):
    result = client_env.json_run(PEER + textwrap.dedent("""
        import json
        import psutil, packsync
        from distributed import Security

        out = {}
        with packsync.Cluster(n_workers=1, threads_per_worker=1) as cluster:
            address = cluster.scheduler_address
            with cluster.get_client() as client:
                out["own_client"] = client.submit(sum, [1, 2]).result()
                nanny = next(iter(client.scheduler_info()["workers"].values()))["nanny"]
            out["address"], out["nanny"] = address, nanny
            out["plain"] = refused(address.replace("tls://", "tcp://"))
            out["other_credentials"] = refused(address, security=Security.temporary())
            out["nobody"] = [as_nobody(address), as_nobody(nanny)]  # another user, on loopback
            out["nobody_with_the_key"] = as_nobody(address, cluster.security)
            key = cluster.security.tls_client_key.splitlines()[1]
            out["key_in_cmdline"] = any(
                key in " ".join(p.info["cmdline"] or [])
                for p in psutil.process_iter(["cmdline"]))
            dashboard = cluster.scheduler.http_server._sockets.values()
            out["dashboard"] = sorted({s.getsockname()[0] for s in dashboard})
        print(json.dumps(out))
    """))
    assert result["own_client"] == 3
    assert result["address"].startswith("tls://") and result["nanny"].startswith("tls://")
    assert result["plain"] and result["other_credentials"]
    assert all(line.startswith("refused") for line in result["nobody"]), result["nobody"]
    assert result["nobody_with_the_key"] == "answered"  # the Dask handshake
    assert not result["key_in_cmdline"]
    assert result["dashboard"] == ["127.0.0.1"]


def test_without_tls_a_peer_connects(client_env: ClientEnv):
    # the opt-out, and the proof that the refusals above come from TLS
    result = client_env.json_run("""
        import json, packsync
        from distributed import Client

        with packsync.Cluster(n_workers=1, threads_per_worker=1,
                              dashboard_address=None) as cluster:
            with Client(cluster.scheduler_address, timeout="10s") as peer:
                answer = peer.submit(sum, [1, 2]).result()
            print(json.dumps({"address": cluster.scheduler_address, "answer": answer}))
    """, DASK_PACKSYNC__TLS="false")
    assert result["address"].startswith("tcp://") and result["answer"] == 3


@pytest.mark.attack("store credentials sent to workers")
def test_workers_get_no_store_credentials(client_env: ClientEnv):
    result = client_env.json_run("""
        import json, os
        import dask, psutil, packsync

        dask.config.set({"packsync.store-options": {"secret": "store-secret-value"},
                         "distributed.scheduler.allowed-failures": 7})
        with packsync.Cluster(n_workers=1, threads_per_worker=1, dashboard_address=None,
                              scheduler_process=True) as cluster:
            with cluster.get_client() as client:
                seen = client.run(lambda: [dask.config.get("packsync.store-options", None),
                                           dask.config.get("distributed.scheduler.allowed-failures"),
                                           "store-secret-value" in str(os.environ)])
            children = psutil.Process().children(recursive=True)  # scheduler, nannies, workers
            environments = [" ".join(p.environ().values()) for p in children]
        print(json.dumps({"workers": list(seen.values()),
                          "children": len(children),
                          "anywhere": any("store-secret-value" in e for e in environments)}))
    """)
    assert result["workers"] == [[None, 7, False]]
    assert result["children"] >= 3 and not result["anywhere"]  # nor the scheduler's process, nor a nanny's
