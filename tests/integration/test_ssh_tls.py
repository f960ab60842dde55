"""A cluster across SSH hosts is TLS-authenticated by default: a peer is refused.

Two clean loopback hosts (tests/support/sshd.py), the scheduler on the first: its
credentials reach it and the workers over the SSH channel only, never on a command
line, in a process's environment or in a file on a host; nor do the store's
credentials reach them.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support import sshd
from tests.support.peers import PEER
from tests.support.venvs import BASE_PYTHON, REPO, ClientEnv, make_client

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sys.platform != "linux" or sshd.available() is not None,
                       reason=str(sshd.available())),
]

SCRIPT = PEER + """
import json
import psutil, packsync
from distributed import Security

def found_anywhere(secret):
    # every process of this machine, the hosts' included (they share its process table)
    for process in psutil.process_iter(["cmdline"]):
        try:
            if secret in " ".join(process.info["cmdline"] or []) or any(
                    secret in value for value in process.environ().values()):
                return process.pid
        except psutil.Error:
            continue
    return None


HOSTS = json.loads(os.environ["TEST_HOSTS"])
import dask
dask.config.set({"packsync.store-options": {"secret": "store-secret-value"}})
out = {}
with packsync.Cluster(hosts=HOSTS, threads_per_worker=1, scheduler_on="first-host") as cluster:
    address = cluster.scheduler_address
    with cluster.get_client() as client:
        out["answer"] = client.submit(sum, [1, 2]).result()
        cluster.scale(cores=3)  # one thread each: a third worker
        client.wait_for_workers(3)
        info = client.scheduler_info()["workers"]
        out["store_options"] = list(client.run(
            lambda: dask.config.get("packsync.store-options", None)).values())
        out["nannies"] = sorted(w["nanny"] for w in info.values())
    out["workers"] = sorted(w.address for w in cluster.workers.values())
    out["address"] = address
    out["plain"] = refused(address.replace("tls://", "tcp://"))
    out["other_credentials"] = refused(address, security=Security.temporary())
    out["nobody"] = [as_nobody(address), as_nobody(out["nannies"][0])]
    out["nobody_with_the_key"] = as_nobody(address, cluster.security)
    out["key_line"] = cluster.security.tls_client_key.splitlines()[1]
    out["key_seen_in_process"] = found_anywhere(out["key_line"])
    out["store_secret_seen_in_process"] = found_anywhere("store-secret-value")
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> ClientEnv:
    return make_client(tmp_path_factory.mktemp("tlsclient"))


@pytest.mark.attack("open scheduler")
def test_a_multi_host_cluster_refuses_a_peer_without_the_credentials(client: ClientEnv,
                                                                     tmp_path):
    key = sshd.client_key(tmp_path / "client-key")
    hidden = (str(client.path), str(client.cache), str(REPO))
    with sshd.loopback_hosts(("alpha", "beta"), tmp_path, key, hidden) as hosts:
        specs = [h.spec(python=BASE_PYTHON) for h in hosts]
        completed = client.run(SCRIPT, check=False, timeout=600,
                               TEST_HOSTS=json.dumps(specs))
        assert completed.returncode == 0, completed.stdout + completed.stderr
        result = json.loads(completed.stdout.strip().splitlines()[-1])
        leftovers = {h.name: h.wait_no_processes() for h in hosts}
        on_disk = [subprocess.run(["grep", "-rlF", result["key_line"], str(h.home)],
                                  capture_output=True, text=True).stdout for h in hosts]
    assert result["answer"] == 3
    assert result["address"].startswith("tls://")
    assert len(result["nannies"]) == 3 and all(a.startswith("tls://") for a in result["nannies"])
    assert result["workers"] == result["nannies"]
    assert result["plain"] and result["other_credentials"]
    assert all(line.startswith("refused") for line in result["nobody"]), result["nobody"]
    assert result["nobody_with_the_key"] == "answered"  # the Dask handshake
    assert result["key_seen_in_process"] is None
    # no store credential travels to the hosts in the Dask config they inherit
    assert result["store_options"] == [None, None, None]
    assert result["store_secret_seen_in_process"] is None
    assert on_disk == ["", ""]
    assert leftovers == {"alpha": {}, "beta": {}}
