"""A running cluster's environment is never collected, expired ones are, on this machine
and on an SSH host; a file deleted from a running environment is seen by worker
verification."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from packsync.hostside import lifecycle
from tests.support import sshd
from tests.support.venvs import BASE_PYTHON, REPO, ClientEnv

pytestmark = pytest.mark.integration

EXPIRE = """
import hashlib, os, time
from packsync.hostside import contents

def expire(cache, env):
    \"\"\"An environment unused for 48 h planted in the cache, and ``env`` unused as long.\"\"\"
    old = time.time() - 48 * 3600
    expired = cache / "envs" / ("0" * 32)
    (expired / ".packsync").mkdir(parents=True)
    (expired / ".packsync" / "pylock.toml").write_text("# old\\n")
    contents.mark_ready(str(expired), hashlib.sha256(b"# old\\n").hexdigest())
    for path in (expired, env):
        os.utime(path / ".packsync-ready", (old, old))
"""

SCRIPT = EXPIRE + """
import json, subprocess, sys
from pathlib import Path
import packsync
from packsync.errors import LaunchError
from packsync.hostside import lease
from packsync.launch.verify import verify_client

cache = Path(os.environ["PACKSYNC_CACHE_DIR"])

def gc():
    done = subprocess.run([str(Path(sys.executable).with_name("packsync")), "cache", "gc",
                           "--json"], capture_output=True, text=True, check=True)
    return [r["env_id"] for r in json.loads(done.stdout)["removed"]]

with packsync.Cluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
    with cluster.get_client() as client:
        client.wait_for_workers(1)
        env = cluster.prepared.environment.path
        expire(cache, env)
        lease.release(str(env))  # the workers alone hold it now
        removed = gc()
        site = next(env.glob("lib/python*/site-packages"))
        (site / "httpx" / "_auth.py").unlink()
        try:
            verify_client(client, cluster.prepared.locked.lock)
            refused = ""
        except LaunchError as error:
            refused = str(error)
print(json.dumps({"env": env.name, "removed": removed, "kept": env.is_dir(),
                  "refused": refused}))
"""


def test_a_running_clusters_environment_is_kept_and_expired_ones_go(client_env: ClientEnv):
    result = client_env.json_run(SCRIPT)
    assert result["removed"] == ["0" * 32] and result["kept"]
    assert "httpx" in result["refused"] and "_auth.py" in result["refused"]
    listed = json.loads(client_env.packsync("cache", "list", "--json").stdout)
    (info,) = listed["environments"]
    assert info["env_id"] == result["env"] and not info["in_use"]
    done = client_env.packsync("cache", "gc", "--json")
    # the cluster closed: unused for 48 h (it was damaged too), it goes now
    assert [r["env_id"] for r in json.loads(done.stdout)["removed"]] == [result["env"]]
    assert json.loads(client_env.packsync("cache", "list", "--json").stdout)[
        "environments"] == []


CLOSED_SCRIPT = """
import json, os, subprocess, sys, time
from pathlib import Path
import packsync

cache = Path(os.environ["PACKSYNC_CACHE_DIR"])

def gc():
    \"\"\"``packsync cache gc`` with a short expiry, after ``env`` was last used 2 h ago.\"\"\"
    old = time.time() - 2 * 3600
    os.utime(env / ".packsync-ready", (old, old))
    done = subprocess.run([str(Path(sys.executable).with_name("packsync")), "cache", "gc",
                           "--expiry", "1h", "--json"], capture_output=True, text=True,
                          check=True)
    return [r["env_id"] for r in json.loads(done.stdout)["removed"]]

cluster = packsync.Cluster(n_workers=1, threads_per_worker=1, dashboard_address=None)
env = cluster.prepared.environment.path
while_open = gc()
cluster.close()
after_close = gc()  # this process goes on, as a notebook does
print(json.dumps({"env": env.name, "while_open": while_open, "after_close": after_close,
                  "gone": not env.exists()}))
"""


FAILED_SCRIPT = CLOSED_SCRIPT.split("cluster = ")[0] + """
from packsync.errors import PacksyncError
env = None
try:  # no SSH server on that port: the hosts cannot be prepared, the cluster never opens
    packsync.Cluster(hosts=["127.0.0.1:1"], dashboard_address=None)
except PacksyncError as error:
    failed = type(error).__name__
(env,) = [p for p in (cache / "envs").iterdir() if p.is_dir()]  # materialized here first
print(json.dumps({"env": env.name, "failed": failed, "removed": gc()}))
"""


def test_a_cluster_that_failed_to_open_keeps_no_environment(client_env: ClientEnv) -> None:
    result = client_env.json_run(FAILED_SCRIPT)
    assert result["failed"] and result["removed"] == [result["env"]]


def test_a_closed_clusters_environment_is_collected_while_its_process_goes_on(
        client_env: ClientEnv) -> None:
    result = client_env.json_run(CLOSED_SCRIPT)
    assert result["while_open"] == []
    assert result["after_close"] == [result["env"]] and result["gone"]


SSH_SCRIPT = EXPIRE + """
import json
from pathlib import Path
import packsync
from packsync.hostside import lifecycle

import dask.config
from packsync.hostside import contents

cache = Path(os.environ["HOST_CACHE"])  # the host's cache, as this machine sees it
spec = json.loads(os.environ["HOST_SPEC"])
# unused for 2 h: within the host's default expiry, beyond the client's 1 h, which it sends
recent = cache / "envs" / ("1" * 32)
(recent / ".packsync").mkdir(parents=True)
(recent / ".packsync" / "pylock.toml").write_text("# recent\\n")
contents.mark_ready(str(recent), hashlib.sha256(b"# recent\\n").hexdigest())
os.utime(recent / ".packsync-ready", (time.time() - 7200,) * 2)
with dask.config.set({"packsync.cache-expiry": "1h"}), packsync.Cluster(
        hosts=[spec], threads_per_worker=1, dashboard_address=None) as cluster:
    with cluster.get_client() as client:
        client.wait_for_workers(1)
        sent_expiry_used = not recent.exists()
        (env,) = [p for p in (cache / "envs").iterdir() if p.is_dir()]
        expire(cache, env)
        removed = [r["env_id"] for r in lifecycle.collect(str(cache))["removed"]]
print(json.dumps({"env": env.name, "removed": removed, "kept": env.is_dir(),
                  "sent_expiry_used": sent_expiry_used}))
"""


@pytest.mark.skipif(sys.platform != "linux" or sshd.available() is not None,
                    reason=str(sshd.available()))
def test_on_an_ssh_host_a_running_clusters_environment_is_kept(client_env: ClientEnv,
                                                               tmp_path: Path) -> None:
    key = sshd.client_key(tmp_path / "client-key")
    hidden = (str(client_env.path), str(client_env.cache), str(REPO))
    with sshd.loopback_hosts(("alpha",), tmp_path / "hosts", key, hidden) as (host,):
        result = client_env.json_run(SSH_SCRIPT, timeout=600, HOST_CACHE=str(host.cache),
                                     HOST_SPEC=json.dumps(host.spec(python=BASE_PYTHON)))
        assert result["removed"] == ["0" * 32] and result["kept"]  # leased by its runs
        assert result["sent_expiry_used"]  # the host collected with the client's expiry
        assert host.wait_no_processes() == {}
        done = lifecycle.collect(str(host.cache))  # the cluster closed: it goes now
        assert [r["env_id"] for r in done["removed"]] == [result["env"]]
