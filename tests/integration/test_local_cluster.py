"""The seed example on a local packsync.Cluster, from a real client venv."""

from __future__ import annotations

import json
import os
import stat
import sys

import pytest

from tests.support.projects import make_project
from tests.support.venvs import ClientEnv

pytestmark = pytest.mark.integration

WORKER_REPORT = """
import json, sys
import packsync

def report():
    import importlib.metadata as md, sys
    import mylib, helper
    out = {"prefix": sys.prefix, "mylib": mylib.MESSAGE, "helper": helper.VALUE,
           "versions": {n: md.version(n) for n in ("httpx", "mylib", "dask", "distributed")}}
    try:
        out["versions"]["six"] = md.version("six")
    except md.PackageNotFoundError:
        pass
    return out

with packsync.Cluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
    with cluster.get_client() as client:
        per_worker = client.run(report)
        computed = client.submit(report).result()
    prepared = cluster.prepared
    print(json.dumps({
        "workers": list(per_worker.values()),
        "computed": computed,
        "client_prefix": sys.prefix,
        "env_path": str(prepared.environment.path),
        "cache_hit": prepared.environment.cache_hit,
    }))
"""


def test_workers_import_exactly_what_the_client_has(client_env: ClientEnv, tmp_path):
    project = make_project(tmp_path / "mylib", "mylib", 'MESSAGE = "from the client, v1"\n')
    client_env.install("-e", str(project))
    (client_env.workdir / "helper.py").write_text("VALUE = 41\n")

    first = client_env.json_run(WORKER_REPORT)
    client_versions = client_env.json_run("""
        import importlib.metadata as md, json
        print(json.dumps({n: md.version(n) for n in ("httpx", "mylib", "dask", "distributed")}))
    """)
    assert len(first["workers"]) == 2
    for worker in first["workers"] + [first["computed"]]:
        assert worker["versions"] == client_versions
        assert worker["mylib"] == "from the client, v1"
        assert worker["helper"] == 41
        assert worker["prefix"] == first["env_path"] != first["client_prefix"]
        assert worker["prefix"].startswith(str(client_env.cache))
    assert first["cache_hit"] is False

    # A package installed on the client after the environment was cached appears next launch.
    client_env.install("six")
    (client_env.workdir / "helper.py").write_text("VALUE = 42\n")
    second = client_env.json_run(WORKER_REPORT)
    assert second["env_path"] != first["env_path"]
    for worker in second["workers"]:
        assert worker["versions"]["six"] == client_env.json_run(
            "import importlib.metadata as md, json; print(json.dumps(md.version('six')))")
        assert worker["helper"] == 42


def test_relaunch_with_nothing_changed_runs_no_uv(client_env: ClientEnv, tmp_path):
    project = make_project(tmp_path / "mylib", "mylib", 'MESSAGE = "same"\n')
    client_env.install("-e", str(project))
    (client_env.workdir / "helper.py").write_text("VALUE = 1\n")
    first = client_env.json_run(WORKER_REPORT)

    calls = tmp_path / "uv-calls.log"
    spy = tmp_path / "uv-spy"
    spy.write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\nexit 1\n")
    spy.chmod(spy.stat().st_mode | stat.S_IEXEC)
    relaunched = client_env.run(WORKER_REPORT, PACKSYNC_UV=str(spy))
    second = json.loads(relaunched.stdout.strip().splitlines()[-1])
    assert not calls.exists(), calls.read_text()
    assert "Scheduler at:" not in relaunched.stderr  # a quiet start, as LocalCluster's
    assert second["cache_hit"] is True and second["env_path"] == first["env_path"]

    # The spy does work: a changed local package needs uv, and the failure is reported.
    (project / "src" / "mylib" / "__init__.py").write_text('MESSAGE = "changed"\n')
    failed = client_env.run(WORKER_REPORT, check=False, PACKSYNC_UV=str(spy))
    assert failed.returncode != 0 and calls.exists()
    assert "mylib" in failed.stderr


def test_missing_mandatory_package_refuses_before_building(client_env: ClientEnv):
    client_env.uninstall("msgpack")
    result = client_env.run("""
        import packsync
        try:
            packsync.Cluster(n_workers=1)
        except packsync.PlanError as error:
            print("PlanError:", error)
    """)
    assert "PlanError:" in result.stdout and "msgpack" in result.stdout
    assert "pip install msgpack" in result.stdout
    assert not (client_env.cache / "envs").exists()
    cli = client_env.packsync("plan")
    assert cli.returncode == 2 and "msgpack" in cli.stderr


@pytest.mark.skipif(sys.platform != "linux", reason="process groups as on Linux")
def test_close_leaves_no_process_behind(client_env: ClientEnv):
    pids = client_env.json_run("""
        import json, os, packsync
        with packsync.Cluster(n_workers=2, dashboard_address=None) as cluster:
            with cluster.get_client() as client:
                pids = list(client.run(os.getpid).values())
            pids += [w.proc.pid for w in cluster.workers.values()]
            pids.append(cluster.scheduler.proc.pid)
        print(json.dumps(pids))
    """)
    alive = [pid for pid in pids if os.path.exists(f"/proc/{pid}")]
    assert alive == []


def test_async_use_and_scale_like_dask(client_env: ClientEnv):
    result = client_env.json_run("""
        import asyncio, json, sys
        import packsync
        from distributed import Client

        async def main():
            async with packsync.Cluster(n_workers=1, threads_per_worker=1,
                                        dashboard_address=None, asynchronous=True) as cluster:
                async with Client(cluster, asynchronous=True) as client:
                    cluster.scale(3)
                    await client.wait_for_workers(3)
                    prefixes = await client.run(lambda: __import__("sys").prefix)
                    total = await client.submit(sum, [1, 2, 3])
                    cluster.scale(1)
                    while len(cluster.workers) != 1:
                        await asyncio.sleep(0.1)
                    return {"prefixes": sorted(set(prefixes.values())), "n": len(prefixes),
                            "total": total, "env": str(cluster.prepared.environment.path)}

        print(json.dumps(asyncio.run(main())))
    """)
    assert result["n"] == 3 and result["total"] == 6
    assert result["prefixes"] == [result["env"]]


def test_worker_that_cannot_start_is_a_clear_error_and_leaves_nothing(client_env: ClientEnv):
    result = client_env.json_run("""
        import json, psutil, packsync
        try:
            packsync.Cluster(n_workers=2, dashboard_address=None,
                             worker_options={"no_such_option": 1})
            outcome = "started"
        except packsync.LaunchError as error:
            outcome = str(error)
        cache = str(packsync.pipeline.cache_dir())
        left = [p.pid for p in psutil.process_iter(["cmdline"])
                if any(cache in part for part in (p.info["cmdline"] or []))]
        print(json.dumps({"outcome": outcome, "left": left}))
    """)
    assert "worker" in result["outcome"] and "exited before it was ready" in result["outcome"]
    assert "no_such_option" in result["outcome"]  # the tail of the worker's own log
    assert result["left"] == []


def test_scheduler_that_cannot_start_leaves_no_worker_behind(client_env: ClientEnv):
    # the first workers are starting while the scheduler fails: none may start after close
    result = client_env.json_run("""
        import json, time, psutil, packsync
        try:
            packsync.Cluster(n_workers=2, dashboard_address=None,
                             scheduler_options={"no_such_option": 1})
            outcome = "started"
        except Exception as error:
            outcome = repr(error)
        time.sleep(2)  # a worker process opened after the failure would be here by now
        cache = str(packsync.pipeline.cache_dir())
        left = [p.pid for p in psutil.process_iter(["cmdline"])
                if any(cache in part for part in (p.info["cmdline"] or []))]
        print(json.dumps({"outcome": outcome, "left": left}))
    """)
    assert "no_such_option" in result["outcome"]
    assert result["left"] == []
