"""Build once, ship one archive: many hosts, a logging index, hosts without any index.

The client builds the environment once and packs it; hosts unpack it, fetching it from
each other, so the index sees the client's downloads only, whatever the number of hosts,
and hosts on a network of their own (no route to the index) run workers all the same.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.support import netns, sshd
from tests.support.private_index import MODULE, PrivateIndex, serve_index
from tests.support.venvs import BASE_PYTHON, REPO, ClientEnv, make_client

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sys.platform != "linux" or netns.available() is not None,
                       reason=str(netns.available())),
]

USER = "fanout"
PASSWORD = "pw-" + secrets.token_hex(12)

LAUNCH = """
import json, os, packsync
HOSTS = json.loads(os.environ["TEST_HOSTS"])
OPTIONS = json.loads(os.environ.get("TEST_OPTIONS", "{}"))

def report():
    import importlib.metadata as md, sys, psprivate_probe
    return {"prefix": sys.prefix, "message": psprivate_probe.MESSAGE,
            "httpx": md.version("httpx"), "probe": md.version("psprivate-probe")}

with packsync.Cluster(hosts=HOSTS, threads_per_worker=1, dashboard_address=None,
                      **OPTIONS) as cluster:
    with cluster.get_client() as client:
        workers = list(client.run(report).values())
    hosts = [{"name": h.name, "hit": h.cache_hit, "sent": h.sent_bytes,
              "received": h.received_bytes} for h in cluster._hosts.prepared]
print(json.dumps({"workers": workers, "hosts": hosts}))
"""


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory):
    with serve_index(tmp_path_factory.mktemp("fanout-index"), {USER: PASSWORD}) as served:
        yield served


@pytest.fixture(scope="module")
def client(index: PrivateIndex, tmp_path_factory: pytest.TempPathFactory) -> ClientEnv:
    env = make_client(tmp_path_factory.mktemp("fanout-client"), "httpx", "asyncssh")
    index.install_probe(env.python, USER, PASSWORD)
    return env


def launch(client: ClientEnv, index: PrivateIndex, hosts: list[dict], uv_cache: Path,
           **options: object) -> dict:
    completed = client.run(
        LAUNCH, check=False, timeout=600, TEST_HOSTS=json.dumps(hosts),
        TEST_OPTIONS=json.dumps(options), UV_INDEX=f"private={index.url}",
        UV_INDEX_PRIVATE_USERNAME=USER, UV_INDEX_PRIVATE_PASSWORD=PASSWORD,
        UV_CACHE_DIR=str(uv_cache),  # every install downloads: the index log counts them
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert PASSWORD not in completed.stdout + completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


def downloads(index_root: Path) -> int:
    """Downloads of the private wheel the index has logged so far."""
    log = (index_root / "server.log").read_text(errors="replace")
    return len(re.findall(rf'"GET /packages/{MODULE}-[^ ]*\.whl HTTP/1\.1" 200', log))


def test_index_load_does_not_grow_with_the_hosts(client: ClientEnv, index: PrivateIndex,
                                                 tmp_path_factory, tmp_path):
    index_root = Path(index.process.args[-1]).parent
    root = tmp_path_factory.mktemp("fanout-hosts")
    key = sshd.client_key(root / "key")
    hidden = (str(client.path), str(client.cache), str(REPO))
    with sshd.loopback_hosts([f"h{n}" for n in range(4)], root, key, hidden) as hosts:
        def specs(count: int, cache: str) -> list[dict]:
            return [h.spec(python=BASE_PYTHON, cache_dir=cache) for h in hosts[:count]]

        before = downloads(index_root)
        one = launch(client, index, specs(1, "~/.cache/ps-one"), tmp_path / "uv1")
        by_client = downloads(index_root) - before  # the client's own build
        assert by_client >= 1

        before = downloads(index_root)
        four = launch(client, index, specs(4, "~/.cache/ps-four"), tmp_path / "uv4")
        assert downloads(index_root) - before == 0  # the client's build is reused; hosts unpack

        before = downloads(index_root)
        launch(client, index, specs(4, "~/.cache/ps-index"), tmp_path / "uv-idx",
               host_install="index")
        assert downloads(index_root) - before == 4  # each host installs from the index

        for result in (one, four):
            assert {w["message"] for w in result["workers"]} == {"served by the private index"}
            assert all(w["prefix"].startswith("/root/.cache/ps-") for w in result["workers"])
        # the client sends the archive to two hosts; the others get it from those
        direct = [h for h in four["hosts"] if h["sent"] > 1_000_000]
        assert len(direct) == 2, four["hosts"]
        assert all(h["received"] > 1_000_000 for h in four["hosts"] if h not in direct)
        for host in hosts:
            assert host.wait_no_processes() == {}
            leaked = subprocess.run(["grep", "-rl", PASSWORD, str(host.root)],
                                    capture_output=True, text=True)
            assert leaked.stdout == "", leaked.stdout


def test_hosts_without_a_route_to_the_index_run_the_environment(client: ClientEnv,
                                                               index: PrivateIndex,
                                                               tmp_path_factory, tmp_path):
    root = tmp_path_factory.mktemp("air-gapped")
    key = sshd.client_key(root / "key")
    hidden = (str(client.path), str(client.cache), str(REPO))
    with netns.isolated_hosts(["gap1", "gap2", "gap3"], root, key, hidden) as hosts:
        reach = hosts[0].ssh(f"{BASE_PYTHON} -c \"import urllib.request; urllib.request."
                             f"urlopen('{index.url}', timeout=3)\"")
        assert reach.returncode != 0  # no route to the index from there
        result = launch(client, index, [h.spec(python=BASE_PYTHON) for h in hosts],
                        tmp_path / "uv")
        assert len(result["workers"]) == 3
        assert {w["message"] for w in result["workers"]} == {"served by the private index"}
        # two from the client; the third from one of them, across the namespaces
        assert sorted(h["sent"] > 1_000_000 for h in result["hosts"]) == [False, True, True]
        assert sum(h["received"] > 1_000_000 for h in result["hosts"]) == 1
        for host in hosts:
            assert host.wait_no_processes() == {}


def test_a_host_builds_for_the_others_and_the_client_uploads_no_environment(
        client: ClientEnv, index: PrivateIndex, tmp_path_factory, tmp_path):
    index_root = Path(index.process.args[-1]).parent
    root = tmp_path_factory.mktemp("builder-hosts")
    key = sshd.client_key(root / "key")
    hidden = (str(client.path), str(client.cache), str(REPO))
    hosts = [sshd.start_host(f"b{n}", root, key, hidden) for n in range(3)]
    try:
        client_built = any((client.cache / "envs").glob("*/.packsync-ready"))
        before = downloads(index_root)
        result = launch(client, index, [h.spec(python=BASE_PYTHON, cache_dir="~/.cache/ps-b")
                                        for h in hosts], tmp_path / "uv", builder="first-host")
        # the builder host's own install (and the client's, for its scheduler, when cold)
        assert downloads(index_root) - before == 1 + (not client_built)
        assert {w["message"] for w in result["workers"]} == {"served by the private index"}
        builder, *others = result["hosts"]
        assert builder["sent"] > 1_000_000  # uv and the code: it installs from the index
        assert all(h["sent"] < 100_000 and h["received"] > 1_000_000 for h in others)
        [record] = (hosts[0].home / ".cache" / "ps-b" / "artifacts").glob("*.json")
        chunks = {c["sha256"] for c in json.loads(record.read_text())["chunks"]}
        for host in hosts:
            assert host.wait_no_processes() == {}
            kept = {p.name for p in (host.home / ".cache" / "ps-b" / "store").rglob("*")}
            assert not kept & chunks  # the archive's chunks are gone once the cluster closed
    finally:
        for host in hosts:
            host.stop()


def test_a_host_that_dies_while_serving_the_others_does_not_stall_the_launch(
        client: ClientEnv, index: PrivateIndex, tmp_path_factory, tmp_path):
    root = tmp_path_factory.mktemp("dying-peer")
    key = sshd.client_key(root / "key")
    hidden = (str(client.path), str(client.cache), str(REPO))
    with sshd.loopback_hosts([f"d{n}" for n in range(4)], root, key, hidden) as hosts:
        dead: list[sshd.SshHost] = []
        done = threading.Event()

        def kill_a_host_once_another_fetches_from_it() -> None:
            while not done.is_set() and not dead:
                established = {port for port, state, _ in sshd.tcp_sockets() if state == "01"}
                for host in hosts:
                    if host.listening_ports() & established:  # a peer is being served
                        host.kill_everything()
                        dead.append(host)
                        return
                done.wait(0.01)

        killer = threading.Thread(target=kill_a_host_once_another_fetches_from_it)
        killer.start()
        try:
            completed = client.run(
                LAUNCH, check=False, timeout=300, TEST_HOSTS=json.dumps(
                    [h.spec(python=BASE_PYTHON) for h in hosts]),
                UV_INDEX=f"private={index.url}", UV_INDEX_PRIVATE_USERNAME=USER,
                UV_INDEX_PRIVATE_PASSWORD=PASSWORD, UV_CACHE_DIR=str(tmp_path / "uv"))
        finally:
            done.set()
            killer.join()
        assert dead, "no host served another"
        # the receivers fell back to another source; only the dead host is reported
        output = completed.stdout + completed.stderr
        assert completed.returncode != 0 and "LaunchError" in output
        assert "another source takes over" in output
        error = output[output.rindex("LaunchError"):]
        assert f":{dead[0].port}" in error
        assert not [h.name for h in hosts if h is not dead[0] and f":{h.port}" in error]
        for host in hosts:
            assert host.wait_no_processes() == {}
