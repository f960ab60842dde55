"""A ``packsync.jobqueue`` cluster (dask-jobqueue's local job queue) holds the client's
environment while it is open, and a job's live code link on its machine while its
worker runs: after ``close()`` both can be collected, the client's process going on."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.venvs import BASE_PYTHON, make_client

pytestmark = pytest.mark.integration

SCRIPT = """
import json, os, subprocess, sys, time
from pathlib import Path
from dask_jobqueue.local import LocalCluster as JobQueueCluster
from distributed import Client
import packsync

cache, node = Path(os.environ["PACKSYNC_CACHE_DIR"]), os.environ["WORKER_CACHE"]

def gc(*args):
    \"\"\"``packsync cache gc`` with a short expiry, every environment last used 2 h ago.\"\"\"
    old = time.time() - 2 * 3600
    for root in (cache, Path(node)):
        for marker in root.glob("envs/*/.packsync-ready"):
            os.utime(marker, (old, old))
    done = subprocess.run([str(Path(sys.executable).with_name("packsync")), "cache", "gc",
                           "--expiry", "1h", "--json", *args], capture_output=True, text=True,
                          check=True)
    result = json.loads(done.stdout)
    return {"removed": [r["env_id"] for r in result["removed"]], "links": result["links"]}

def links():
    return sorted(p.name for p in Path(node, "code", "live").glob("jobs-*")
                  if not p.name.endswith(".lease"))

cluster = packsync.jobqueue(
    JobQueueCluster, cores=1, processes=1, memory="1GB", store=os.environ["SHARED"],
    python=os.environ["WORKER_PYTHON"], host_cache_dir=node,
    scheduler_options={"host": "127.0.0.1", "dashboard_address": None})
env = cluster.command.lock.env_id
cluster.scale(1)
with Client(cluster) as client:
    client.wait_for_workers(1, timeout=300)
    out = {"env": env, "open_links": links(), "client_open": gc(),
           "node_open": gc("--cache-dir", node)}
cluster.close()
deadline = time.monotonic() + 60
while time.monotonic() < deadline:  # the job's worker ends a moment after close
    out["node_closed"] = gc("--cache-dir", node)
    if out["node_closed"]["links"]:
        break
    time.sleep(0.5)
out["client_closed"] = gc()
out["closed_links"] = links()
print(json.dumps(out))
"""


def test_a_closed_jobqueue_clusters_environment_and_links_are_collected(tmp_path: Path):
    client = make_client(tmp_path, "dask-jobqueue")
    result = client.json_run(SCRIPT, timeout=600, SHARED=str(tmp_path / "shared"),
                             WORKER_PYTHON=BASE_PYTHON,
                             WORKER_CACHE=str(tmp_path / "worker-cache"))
    env = result["env"]
    assert len(result["open_links"]) == 1
    assert result["client_open"] == {"removed": [], "links": 0}  # the open cluster's
    assert result["node_open"] == {"removed": [], "links": 0}  # its running job's
    assert result["node_closed"] == {"removed": [env], "links": 1}
    assert result["closed_links"] == []
    assert result["client_closed"]["removed"] == [env]
