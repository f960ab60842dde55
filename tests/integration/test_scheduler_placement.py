"""Where a local packsync.Cluster runs its scheduler: in the client process by default, or as
a process of its own in the environment; live code sync and close() work either way."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from tests.support.venvs import ClientEnv

pytestmark = pytest.mark.integration

PLACEMENT = """
import json, os, sys
import packsync
import helpers

def where():
    import sys, os
    return {"pid": os.getpid(), "prefix": sys.prefix}

def worker_f():
    import helpers
    return helpers.f()

out = {"client": {"pid": os.getpid(), "prefix": sys.prefix}}
with packsync.Cluster(n_workers=1, threads_per_worker=1, dashboard_address=None,
                      **json.loads(OPTIONS)) as cluster:
    with cluster.get_client() as client:
        out["scheduler"] = client.run_on_scheduler(where)
        out["workers"] = list(client.run(where).values())
        out["env"] = str(cluster.prepared.environment.path)
        before = id(sys.modules["helpers"])
        with open("helpers.py.tmp", "w") as handle:
            handle.write("def f():\\n    return 2\\n")
        os.replace("helpers.py.tmp", "helpers.py")
        result = cluster.sync()
        out["sent"] = list(result.sent)
        out["client_module_kept"] = id(sys.modules.get("helpers")) == before
        out["client_f"] = helpers.f()
        out["worker_f"] = list(client.run(worker_f).values())
        out["submitted"] = client.submit(worker_f, pure=False).result()
        out["scheduler_f"] = client.run_on_scheduler(worker_f)
        out["pids"] = [w["pid"] for w in out["workers"]] + [w.proc.pid for w in
                                                             cluster.workers.values()]
print(json.dumps(out))
"""


def run_placement(client_env: ClientEnv, **options: object) -> dict[str, Any]:
    (client_env.workdir / "helpers.py").write_text("def f():\n    return 1\n")
    out = client_env.json_run(PLACEMENT.replace("OPTIONS", repr(json.dumps(options))))
    assert isinstance(out, dict)
    return out


def test_scheduler_in_the_client_process_leaves_the_clients_modules_alone(
    client_env: ClientEnv,
):
    out = run_placement(client_env)
    assert out["scheduler"] == out["client"]  # the scheduler is this very process
    assert [w["prefix"] for w in out["workers"]] == [out["env"]] != [out["client"]["prefix"]]
    assert out["sent"] == ["helpers.py"]
    # the client's own helpers stays imported as the client imported it: no module is dropped
    assert out["client_module_kept"] is True and out["client_f"] == 1
    assert out["worker_f"] == [2] and out["submitted"] == 2
    assert out["scheduler_f"] == 1  # the scheduler sees the client's modules
    assert [pid for pid in out["pids"] if os.path.exists(f"/proc/{pid}")] == []


def test_scheduler_process_runs_in_the_environment_and_gets_live_code(client_env: ClientEnv):
    out = run_placement(client_env, scheduler_process=True)
    assert out["scheduler"]["pid"] != out["client"]["pid"]
    assert out["scheduler"]["prefix"] == out["env"]
    assert out["client_module_kept"] is True and out["client_f"] == 1
    assert out["worker_f"] == [2] and out["submitted"] == 2 and out["scheduler_f"] == 2
    pids = [*out["pids"], out["scheduler"]["pid"]]
    assert [pid for pid in pids if os.path.exists(f"/proc/{pid}")] == []


SHARED_NANNIES = """
import json, os, sys, time
import packsync

def probe():
    import os, sys
    return {"pid": os.getpid(), "ppid": os.getppid(), "prefix": sys.prefix,
            "omp": os.environ.get("OMP_NUM_THREADS"), "hash": hash("packsync"),
            "path": [p for p in sys.path if "site-packages" in p]}

out = {"client_prefix": sys.prefix}
with packsync.Cluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
    with cluster.get_client() as client:
        out["env"] = str(cluster.prepared.environment.path)
        out["before"] = client.run(probe)
        out["nanny_processes"] = sorted({w.proc.pid for w in cluster.workers.values()})
        cluster.scale(1)
        deadline = time.monotonic() + 60
        while len(client.scheduler_info()["workers"]) != 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        out["after_scale_down"] = list(client.run(probe).values())
        client.restart()
        out["after_restart"] = list(client.run(probe).values())
        out["computed"] = client.submit(sum, [1, 2], pure=False).result()
        cluster.scale(2)
        client.wait_for_workers(2)
        out["after_scale_up"] = list(client.run(probe).values())
        out["pids"] = [w["pid"] for w in out["after_scale_up"]] + out["nanny_processes"] + [
            w.proc.pid for w in cluster.workers.values()]
    out["gone_before_close"] = [w["pid"] for w in out["before"].values()
                                if w["pid"] not in {a["pid"] for a in out["after_scale_down"]}]
print(json.dumps(out))
"""


def test_first_workers_share_one_nanny_process_yet_scale_and_restart_alone(
    client_env: ClientEnv,
):
    out = client_env.json_run(SHARED_NANNIES)
    before = list(out["before"].values())
    assert len(out["nanny_processes"]) == 1  # both nannies in one process of the environment
    for worker in before + out["after_restart"] + out["after_scale_up"]:
        assert worker["prefix"] == out["env"] != out["client_prefix"]
        assert all(p.startswith(out["env"]) for p in worker["path"])  # never the client's
        assert worker["omp"] == "1"  # Dask's pre-spawn environment reaches forked workers
    assert len({w["hash"] for w in before + out["after_restart"]}) == 1  # one hash seed
    # scaling down closed one worker; the other kept running in the same process
    assert len(out["after_scale_down"]) == 1 and out["after_scale_down"][0] in before
    assert len(out["gone_before_close"]) == 1
    assert not os.path.exists(f"/proc/{out['gone_before_close'][0]}")
    restarted = out["after_restart"][0]
    assert restarted["pid"] != out["after_scale_down"][0]["pid"] and out["computed"] == 3
    assert len(out["after_scale_up"]) == 2
    assert [pid for pid in out["pids"] if os.path.exists(f"/proc/{pid}")] == []
