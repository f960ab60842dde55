"""Working-directory code edited while a packsync.Cluster runs reaches it without a restart."""

from __future__ import annotations

import os

import pytest

from tests.support.projects import write
from tests.support.venvs import ClientEnv

pytestmark = pytest.mark.integration

LIVE_EDIT = """
import json, os, sys, time
import packsync
import helpers, users

def code(dask_worker=None):
    import helpers, users, pkg.mod
    return {"f": helpers.f(), "g": users.g(), "pkg": pkg.mod.VALUE,
            "other": id(sys.modules.get("other"))}

def received(dask_worker):
    plugin = next((p for n, p in dask_worker.plugins.items()
                   if n.startswith("packsync-code-")), None)  # the cluster's own name
    return sorted(plugin.update.files) if plugin else None

def write(relpath, text):
    with open(relpath + ".tmp", "w") as handle:
        handle.write(text)
    os.replace(relpath + ".tmp", relpath)  # as editors save

out = {}
with packsync.Cluster(n_workers=2, threads_per_worker=1, dashboard_address=None,
                      scheduler_process=True) as cluster:  # the scheduler gets the code too
    with cluster.get_client() as client:
        client.run(lambda: __import__("other"))
        out["before"] = list(client.run(code).values())
        out["submitted_before"] = client.submit(helpers.f, pure=False).result()
        env_before = str(cluster.prepared.environment.path)

        write("helpers.py", "def f():\\n    return 2\\n")
        result = cluster.sync()
        out["sent"], out["workers"] = list(result.sent), result.workers
        out["after"] = list(client.run(code).values())
        # helpers.f is pickled by reference: the workers import the new helpers
        out["submitted_after"] = client.submit(helpers.f, pure=False).result()
        out["on_scheduler"] = client.run_on_scheduler(lambda: __import__("helpers").f())
        out["received"] = list(client.run(received).values())
        out["nothing_changed"] = list(cluster.sync().sent)

        write("pkg/mod.py", "VALUE = 'two'\\n")
        os.unlink("old.py")
        second = cluster.sync()
        out["second"] = {"sent": list(second.sent), "deleted": list(second.deleted)}
        out["old_gone"] = list(client.run(
            lambda: __import__("importlib.util").util.find_spec("old") is None).values())

        cluster.scale(3)
        client.wait_for_workers(3)
        out["after_scale"] = list(client.run(code).values())
        client.restart()  # the nannies start new worker processes
        out["after_restart"] = list(client.run(code).values())
        out["same_env"] = str(cluster.prepared.environment.path) == env_before
        out["link"] = str(cluster.live_code.link)
print(json.dumps(out))
"""


def test_edited_module_reaches_running_and_later_workers(client_env: ClientEnv):
    work = client_env.workdir
    write(work / "helpers.py", "def f():\n    return 1\n")
    write(work / "users.py", "from helpers import f\n\ndef g():\n    return f() * 10\n")
    write(work / "other.py", "STATE = []\n")
    write(work / "old.py", "X = 1\n")
    write(work / "pkg/__init__.py", "")
    write(work / "pkg/mod.py", "VALUE = 'one'\n")

    out = client_env.json_run(LIVE_EDIT)

    assert [w["f"] for w in out["before"]] == [1, 1] and out["submitted_before"] == 1
    assert out["sent"] == ["helpers.py"] and out["workers"] == 2
    # only the changed file travelled, to every worker
    assert out["received"] == [["helpers.py"], ["helpers.py"]]
    for worker, before in zip(out["after"], out["before"], strict=True):
        assert worker["f"] == 2
        assert worker["g"] == 20  # `from helpers import f` elsewhere is refreshed too
        assert worker["other"] == before["other"]  # an unchanged module keeps its state
    assert out["submitted_after"] == 2 and out["on_scheduler"] == 2
    assert out["nothing_changed"] == []

    assert out["second"] == {"sent": [os.path.join("pkg", "mod.py")], "deleted": ["old.py"]}
    assert out["old_gone"] == [True, True]
    assert len(out["after_scale"]) == 3 and len(out["after_restart"]) == 3
    for worker in out["after_scale"] + out["after_restart"]:
        assert (worker["f"], worker["g"], worker["pkg"]) == (2, 20, "two")
    assert out["same_env"]  # editing code never rebuilt the environment
    assert not os.path.lexists(out["link"])  # close removes the cluster's link


WATCH = """
import json, os, sys, time
import dask
import packsync

def probe():
    import importlib.util, pathlib
    import helpers
    data = pathlib.Path(helpers.__file__).parent / "data" / "table.csv"
    return {"f": helpers.f(), "data": data.read_text() if data.exists() else None,
            "scratch": importlib.util.find_spec("scratch") is not None,
            "ignored": importlib.util.find_spec("generated") is not None,
            "leak": importlib.util.find_spec("leak") is not None}

with dask.config.set({"packsync.exclude": ["scratch.py"]}):
    cluster = packsync.Cluster(n_workers=1, threads_per_worker=1, dashboard_address=None,
                               include=["data/*.csv"], watch=True)
with cluster, cluster.get_client() as client:
    before = client.run(probe)
    with open("helpers.py.tmp", "w") as handle:
        handle.write("def f():\\n    return 'saved'\\n")
    os.replace("helpers.py.tmp", "helpers.py")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        after = list(client.run(probe).values())[0]
        if after["f"] == "saved":
            break
        time.sleep(0.2)
print(json.dumps({"before": list(before.values())[0], "after": after}))
"""


def test_watch_include_exclude_gitignore_and_symlinks(client_env: ClientEnv, tmp_path):
    work = client_env.workdir
    write(work / "helpers.py", "def f():\n    return 'first'\n")
    write(work / "data/table.csv", "a,b\n1,2\n")
    write(work / "scratch.py", "X = 1\n")
    write(work / "generated.py", "X = 1\n")
    write(work / ".gitignore", "generated.py\n")
    write(tmp_path / "outside" / "leak.py", "SECRET = 1\n")
    os.symlink(tmp_path / "outside" / "leak.py", work / "leak.py")

    out = client_env.json_run(WATCH)

    assert out["before"] == {"f": "first", "data": "a,b\n1,2\n", "scratch": False,
                             "ignored": False, "leak": False}
    assert out["after"]["f"] == "saved"  # no sync() call: the watcher sent it


def test_size_cap_names_the_largest_files(client_env: ClientEnv):
    write(client_env.workdir / "huge_table.py", "X = '" + "x" * 300_000 + "'\n")
    write(client_env.workdir / "small.py", "Y = 1\n")
    result = client_env.run("""
        import dask, packsync
        with dask.config.set({"packsync.max-code-size": "100kB"}):
            try:
                packsync.Cluster(n_workers=1, dashboard_address=None)
            except packsync.PacksyncError as error:
                print(type(error).__name__, error)
    """)
    assert "ScanError" in result.stdout and "huge_table.py" in result.stdout
    assert "over the" in result.stdout and "packsync.exclude" in result.stdout
