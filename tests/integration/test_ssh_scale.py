"""A cluster on an SSH host scales by memory as Dask users do it, with
``memory_limit="auto"`` (each worker's share of its host's memory)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.support import sshd
from tests.support.venvs import BASE_PYTHON, REPO, ClientEnv

pytestmark = pytest.mark.integration

SCRIPT = """
import json, os
import packsync
from dask.utils import parse_bytes

spec = json.loads(os.environ["HOST_SPEC"])
with packsync.Cluster(hosts=[spec], n_workers=1, threads_per_worker=1,
                      dashboard_address=None) as cluster:
    with cluster.get_client() as client:
        client.wait_for_workers(1)
        first = [w["memory_limit"] for w in client.scheduler_info()["workers"].values()]
        cluster.scale(memory=int(first[0] * 1.5))  # one worker is not enough: two are
        client.wait_for_workers(2)
        limits = sorted(w["memory_limit"] for w in client.scheduler_info()["workers"].values())
        template = parse_bytes(cluster.new_spec["options"]["memory_limit"])
print(json.dumps({"first": first, "limits": limits, "template": template}))
"""


@pytest.mark.skipif(sys.platform != "linux" or sshd.available() is not None,
                    reason=str(sshd.available()))
def test_scale_by_memory_on_an_ssh_host(client_env: ClientEnv, tmp_path: Path) -> None:
    from dask.system import CPU_COUNT
    from distributed.system import MEMORY_LIMIT

    key = sshd.client_key(tmp_path / "client-key")
    hidden = (str(client_env.path), str(client_env.cache), str(REPO))
    with sshd.loopback_hosts(("alpha",), tmp_path / "hosts", key, hidden) as (host,):
        result = client_env.json_run(SCRIPT, timeout=600,
                                     HOST_SPEC=json.dumps(host.spec(python=BASE_PYTHON)))
        assert host.wait_no_processes() == {}
    share = int(MEMORY_LIMIT * min(1, 1 / CPU_COUNT))  # the host is this machine
    assert result["first"] == [share] and result["template"] == share
    assert result["limits"] == [share, share]
