"""packsync.Cluster(hosts=...) on real OpenSSH servers, each a clean host of its own.

Hosts have SSH and Python, their own HOME and cache, and cannot see the client's venv,
cache or this checkout (tests/support/sshd.py): packsync itself is not installed
there before the launch.
"""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import sshd
from tests.support.projects import make_project
from tests.support.servers import free_port
from tests.support.venvs import BASE_PYTHON, REPO, ClientEnv, make_client

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sys.platform != "linux" or sshd.available() is not None,
                       reason=str(sshd.available())),
]

SEED = """
import json, os, sys, threading, logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import dask, httpx, packsync
import mylib, helper

logging.basicConfig(level=logging.WARNING)

class Api(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"values": [3, 1, 4]}).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
threading.Thread(target=server.serve_forever, daemon=True).start()
URL = f"http://127.0.0.1:{server.server_port}/foo"

@dask.delayed
def func():
    data = httpx.get(URL).json()
    return mylib.process(data) + helper.VALUE

def report():
    import importlib.metadata as md, os, sys
    return {"prefix": sys.prefix, "home": os.environ.get("HOME"), "python": sys.version.split()[0],
            "httpx": md.version("httpx"), "mylib": md.version("mylib")}

HOSTS = json.loads(os.environ["TEST_HOSTS"])
OPTIONS = json.loads(os.environ.get("TEST_OPTIONS", "{}"))
with packsync.Cluster(hosts=HOSTS, threads_per_worker=1, dashboard_address=None,
                      **OPTIONS) as cluster:
    with cluster.get_client() as client:
        result = func().compute()
        workers = list(client.run(report).values())
    hosts = [{"name": h.name, "cache_hit": h.cache_hit, "sent": h.sent_bytes,
              "received": h.received_bytes, "python": h.python_version, "bytecode": h.bytecode}
             for h in cluster._hosts.prepared]
print(json.dumps({"result": result, "workers": workers, "hosts": hosts}))
"""


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> ClientEnv:
    root = tmp_path_factory.mktemp("sshclient")
    project = make_project(root / "mylib", "mylib", """
        def process(data):
            return sum(data["values"])
    """)
    env = make_client(root, "httpx", "psutil", "asyncssh", "-e", str(project))
    (env.workdir / "helper.py").write_text("VALUE = 100\n")
    return env


@pytest.fixture(scope="module")
def hosts(client: ClientEnv, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("sshhosts")
    key = sshd.client_key(root / "client-key")
    hidden = (str(client.path), str(client.cache), str(REPO), str(client.path.parent / "mylib"))
    with sshd.loopback_hosts(("alpha", "beta"), root, key, hidden) as started:
        yield started


def run_seed(client: ClientEnv, host_specs: list[dict], **options: object):
    return client.run(SEED, check=False, timeout=600, TEST_HOSTS=json.dumps(host_specs),
                      TEST_OPTIONS=json.dumps(options))


def seed_result(completed: subprocess.CompletedProcess[str]) -> dict:
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


def python_of(host: sshd.SshHost) -> str:
    return BASE_PYTHON  # the same release as the client (the host sees it via its own /root)


def test_seed_example_on_two_clean_hosts_then_a_cache_hit(client: ClientEnv, hosts, tmp_path):
    alpha, beta = hosts
    for host in hosts:  # nothing of packsync or the client's packages on the hosts
        probe = host.ssh(f"{python_of(host)} -c 'import packsync'")
        assert probe.returncode != 0 and "No module named 'packsync'" in probe.stderr
        assert host.ssh(f"test -e {client.python}").returncode != 0  # hidden
    specs = [h.spec(python=python_of(h)) for h in hosts]

    first = seed_result(run_seed(client, specs))
    assert first["result"] == 8 + 100
    assert len(first["workers"]) == 2
    for worker in first["workers"]:
        assert worker["prefix"].startswith("/root/.cache/packsync/envs/")
        assert worker["home"] == "/root"
        assert worker["mylib"] == "0.1.0"
    # the client sends the environment's archive to two hosts (and no more: see test_fanout)
    assert all(h["cache_hit"] is False for h in first["hosts"])
    assert all(h["sent"] > 1_000_000 and h["received"] == 0 for h in first["hosts"])
    for host in hosts:
        envs = [p for p in (host.cache / "envs").iterdir() if p.is_dir()]
        assert len(envs) == 1 and (envs[0] / ".packsync-ready").exists()
        assert not list((host.cache / "store").rglob("*/*")) or all(  # chunks are not kept
            p.stat().st_size < 100_000 for p in (host.cache / "store").rglob("*/*"))
        assert not (host.cache / "bin").exists()  # no uv: nothing is installed there
        assert host.wait_no_processes() == {}

    # Relaunch: one round trip per host finds the environment; uv is never run anywhere.
    calls = tmp_path / "uv-calls.log"
    spy = tmp_path / "uv-spy"
    spy.write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\nexit 1\n")
    spy.chmod(0o755)
    second = seed_result(client.run(SEED, check=False, timeout=600, PACKSYNC_UV=str(spy),
                                    TEST_HOSTS=json.dumps(specs)))
    assert second["result"] == 108
    assert [h["cache_hit"] for h in second["hosts"]] == [True, True]
    assert [h["sent"] for h in second["hosts"]] == [0, 0]
    assert not calls.exists()
    for host in hosts:
        assert host.wait_no_processes() == {}


def test_index_mode_reuses_the_hosts_byte_code_for_an_edited_package(client: ClientEnv,
                                                                     hosts):
    alpha = hosts[0]
    specs = [alpha.spec(python=python_of(alpha))]
    seed_result(run_seed(client, specs, host_install="index"))  # an earlier environment
    source = client.path.parent / "mylib" / "src" / "mylib" / "__init__.py"
    original = source.read_text()
    try:
        source.write_text(original + "\nEDITED = True\n")
        edited = seed_result(run_seed(client, specs, host_install="index"))
    finally:
        source.write_text(original)
    assert edited["result"] == 108
    [host] = edited["hosts"]
    assert host["cache_hit"] is False
    reused, compiled = host["bytecode"]  # counted by pyc_reuse.py on the host
    assert reused > 500 and 1 <= compiled < reused // 10
    ready = sorted((alpha.cache / "envs").glob("*/.packsync-ready"),
                   key=lambda p: p.stat().st_mtime)
    new, older = ready[-1].parent, [p.parent for p in ready[:-1]]
    edited_pyc = next(new.glob("lib/python*/site-packages/mylib/__pycache__/__init__.*.pyc"))
    assert b"EDITED" in edited_pyc.read_bytes()  # compiled from the edited source
    kept = next(new.glob("lib/python*/site-packages/httpx/__pycache__/__init__.*.pyc"))
    relative = kept.relative_to(new)  # an unchanged file: a donor's byte code
    assert any((env / relative).exists()
               and (env / relative).read_bytes()[16:] == kept.read_bytes()[16:] for env in older)
    assert alpha.wait_no_processes() == {}


def disguised_version_edit(metadata: Path) -> str:
    """Give a package's METADATA another version, keeping its size and modification time
    (the ready marker's record then sees nothing: the worker's own check must); the new
    version."""
    text, before = metadata.read_text(), metadata.stat()
    real = next(line for line in text.splitlines() if line.startswith("Version:"))
    fake = "9" * len(real.split()[1])
    metadata.write_text(text.replace(real, f"Version: {fake}"))
    os.utime(metadata, ns=(before.st_atime_ns, before.st_mtime_ns))
    return fake


@pytest.mark.attack("tampered environment")
def test_tampered_worker_is_reported_with_both_versions_and_its_host(client: ClientEnv, hosts):
    alpha, beta = hosts
    specs = [h.spec(python=python_of(h)) for h in hosts]
    seed_result(run_seed(client, specs))  # environments in place
    metadata = next((beta.cache / "envs").glob("*/lib/python*/site-packages/httpx-*.dist-info"))
    original = (metadata / "METADATA").read_text()
    built = (metadata / "METADATA").stat()
    real = next(line for line in original.splitlines() if line.startswith("Version:"))
    version = real.split()[1]
    try:
        # an edit the ready marker's record sees (another size): the host rebuilds
        (metadata / "METADATA").write_text(original.replace(real, "Version: 0.0.1"))
        seed_result(run_seed(client, specs, fail_on="warning"))
        assert (metadata / "METADATA").read_text() == original

        # one made to look untouched (same size and time): the worker's check reports it
        fake = disguised_version_edit(metadata / "METADATA")
        stopped = run_seed(client, specs, fail_on="warning")
        assert stopped.returncode != 0
        assert "LaunchError" in stopped.stderr
        assert f"httpx: lock {version}, worker" in stopped.stderr
        assert f"on {beta.spec()['address']}:{beta.port} has {fake}" in stopped.stderr
        assert f":{alpha.port} has" not in stopped.stderr

        warned = seed_result(run_seed(client, specs))  # fail_on="critical": a warning only
        assert warned["result"] == 108
    finally:  # as built, time included: the next test finds the environment intact
        (metadata / "METADATA").write_text(original)
        os.utime(metadata / "METADATA", ns=(built.st_atime_ns, built.st_mtime_ns))
    for host in hosts:
        assert host.wait_no_processes() == {}


SCALED = """
import json, logging, os, time, packsync
logging.basicConfig(level=logging.WARNING)
HOSTS = json.loads(os.environ["TEST_HOSTS"])
with packsync.Cluster(hosts=HOSTS, n_workers=1, threads_per_worker=1,
                      dashboard_address=None) as cluster:
    with cluster.get_client() as client:
        at_launch = cluster.verification
        cluster.scale(2)  # the second worker goes to the second host
        deadline = time.monotonic() + 120
        while not cluster.verification.retired and time.monotonic() < deadline:
            time.sleep(0.2)
        later = cluster.verification
        deadline = time.monotonic() + 30
        while len(client.scheduler_info()["workers"]) != 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        total = client.submit(sum, range(10), pure=False).result(timeout=60)
        out = {"launch_ok": at_launch.ok, "verified": len(later.verified),
               "retired": len(later.retired), "ok": later.ok,
               "differences": [[d.package, d.severity, d.host] for d in later.differences
                               if d.severity != "notice"],
               "workers": len(client.scheduler_info()["workers"]),
               "specs": len(cluster.worker_spec), "total": total}
print(json.dumps(out))
"""


def test_worker_added_later_with_another_environment_is_retired(client: ClientEnv, hosts):
    alpha, beta = hosts
    specs = [h.spec(python=python_of(h)) for h in hosts]
    if not any((beta.cache / "envs").glob("*/.packsync-ready")):
        seed_result(run_seed(client, specs))
    site = next((beta.cache / "envs").glob("*/lib/python*/site-packages"))
    changed, times = {}, {}
    for pattern in ("httpx-*.dist-info", "tornado-*.dist-info"):  # a warning, a critical one
        metadata = next(site.glob(pattern)) / "METADATA"
        changed[metadata] = metadata.read_text()
        times[metadata] = metadata.stat()
        disguised_version_edit(metadata)
    try:
        completed = client.run(SCALED, check=False, timeout=600, TEST_HOSTS=json.dumps(specs))
    finally:
        for metadata, text in changed.items():
            metadata.write_text(text)
            os.utime(metadata, ns=(times[metadata].st_atime_ns, times[metadata].st_mtime_ns))
    assert completed.returncode == 0, completed.stdout + completed.stderr
    out = json.loads(completed.stdout.strip().splitlines()[-1])
    beta_name = f"127.0.0.1:{beta.port}"
    assert out["launch_ok"] is True  # the first worker runs on the first host
    assert out["verified"] == 2 and out["retired"] == 1 and out["ok"] is False
    assert sorted(out["differences"]) == [["httpx", "warning", beta_name],
                                          ["tornado", "critical", beta_name]]
    assert out["workers"] == 1 and out["specs"] == 1 and out["total"] == 45
    assert "retiring worker tls://127.0.0.1:" in completed.stderr  # TLS by default
    assert f"on {beta_name}: its environment differs" in completed.stderr
    assert "tornado: lock" in completed.stderr and "has 9" in completed.stderr
    for host in hosts:
        assert host.wait_no_processes() == {}


FAULT = """
import json, os, packsync, psutil
HOSTS = json.loads(os.environ["TEST_HOSTS"])
OPTIONS = json.loads(os.environ.get("TEST_OPTIONS", "{}"))
try:
    with packsync.Cluster(hosts=HOSTS, threads_per_worker=1, dashboard_address=None,
                          **OPTIONS):
        outcome = "started"
except packsync.PacksyncError as error:
    outcome = f"{type(error).__name__}: {error}"
cache = str(packsync.pipeline.cache_dir())
left = [p.pid for p in psutil.process_iter(["cmdline"])
        if any(cache in part for part in (p.info["cmdline"] or []))]
ports = {h.get("port") for h in HOSTS}
connected = [c.raddr.port for c in psutil.Process().net_connections("tcp")
             if c.raddr and c.raddr.port in ports and c.status == psutil.CONN_ESTABLISHED]
print(json.dumps({"outcome": outcome, "left": left, "connected": connected}))
"""


def fault(client: ClientEnv, specs: list[dict], **options: object) -> dict:
    completed = client.run(FAULT, check=False, timeout=600, TEST_HOSTS=json.dumps(specs),
                           TEST_OPTIONS=json.dumps(options))
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_unreachable_refused_and_pythonless_hosts_stop_cleanly(client: ClientEnv, hosts,
                                                               tmp_path):
    alpha, beta = hosts
    good = alpha.spec(python=python_of(alpha))

    port = free_port()
    unreachable = fault(client, [good, {"address": "127.0.0.1", "port": port}])
    assert f"cannot reach host 127.0.0.1:{port}" in unreachable["outcome"]
    assert unreachable["left"] == []

    stranger = sshd.client_key(tmp_path / "stranger")
    refused = fault(client, [good, {**beta.spec(), "connect_options": beta.options(stranger)}])
    assert f"host root@127.0.0.1:{beta.port} refused the SSH login" in refused["outcome"] or (
        f"host 127.0.0.1:{beta.port} refused the SSH login" in refused["outcome"])
    assert refused["left"] == []

    no_python = fault(client, [good, beta.spec(python="/opt/no-such/python3.11")])
    assert f"host 127.0.0.1:{beta.port} has no usable Python" in no_python["outcome"]
    assert "/opt/no-such/python3.11" in no_python["outcome"]  # the host's own words
    assert "python=" in no_python["outcome"]
    # the hosts were connected to while this machine failed to prepare: nothing stays open
    failed_here = fault(client, [good, beta.spec(python=python_of(beta))],
                        lock_environment="cuda")
    assert "cuda" in failed_here["outcome"] and "pixi.lock" in failed_here["outcome"]
    assert [r["connected"] for r in (unreachable, refused, no_python, failed_here)] == [[]] * 4
    for host in hosts:
        assert host.wait_no_processes() == {}


def test_failed_materialization_names_the_host_with_its_log(client: ClientEnv, hosts,
                                                           tmp_path_factory):
    alpha, _ = hosts
    root = tmp_path_factory.mktemp("offline")
    offline = sshd.start_host("offline", root, alpha.key, alpha.hidden,
                              set_env={"UV_OFFLINE": "1"})
    try:
        result = fault(client, [alpha.spec(python=python_of(alpha)),
                                offline.spec(python=python_of(offline))], host_install="index")
        assert result["outcome"].startswith("MaterializeError")
        assert f"127.0.0.1:{offline.port}" in result["outcome"]
        assert "last lines of the log" in result["outcome"]
        assert result["left"] == []
        assert not any((offline.cache / "envs").glob("*/.packsync-ready"))
        assert offline.wait_no_processes() == {} and alpha.wait_no_processes() == {}
    finally:
        offline.stop()


SURVIVOR = """
import json, os, sys, time, packsync
HOSTS = json.loads(os.environ["TEST_HOSTS"])
with packsync.Cluster(hosts=HOSTS, threads_per_worker=1, dashboard_address=None) as cluster:
    with cluster.get_client() as client:
        assert len(client.run(os.getpid)) == 2
        print("READY", flush=True)
        sys.stdin.readline()  # the test kills a host now
        deadline = time.monotonic() + 60
        while len(client.scheduler_info()["workers"]) != 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        total = client.submit(sum, range(10), pure=False).result(timeout=60)
        survivors = len(client.scheduler_info()["workers"])
print(json.dumps({"total": total, "survivors": survivors}))
"""


def test_cluster_survives_a_dead_host_and_close_leaves_nothing(client: ClientEnv, hosts,
                                                              tmp_path_factory):
    alpha, beta = hosts
    root = tmp_path_factory.mktemp("doomed")
    doomed = sshd.start_host("doomed", root, alpha.key, alpha.hidden)
    script = client.workdir / "_survivor.py"
    script.write_text(SURVIVOR)
    proc = subprocess.Popen(
        [str(client.python), str(script)], cwd=client.workdir, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=client.env(TEST_HOSTS=json.dumps([alpha.spec(python=python_of(alpha)),
                                              doomed.spec(python=python_of(doomed))])),
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        line = proc.stdout.readline()
        assert line.strip() == "READY", line + proc.stderr.read() if proc.stderr else line
        assert doomed.processes()  # its worker runs there
        doomed.kill_everything()
        proc.stdin.write("go\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        result = json.loads(out.strip().splitlines()[-1])
        assert result == {"total": 45, "survivors": 1}
        assert alpha.wait_no_processes() == {}
    finally:
        if proc.poll() is None:
            proc.kill()
        doomed.stop()
        script.unlink(missing_ok=True)


LIVE = """
import json, os, pathlib, packsync

def namespace():
    return os.readlink("/proc/self/ns/mnt")

def helper_value():
    import helper
    return helper.VALUE

def doubled():
    import extra
    return extra.DOUBLE

def started():
    parent = pathlib.Path(f"/proc/{os.getppid()}/cmdline").read_bytes()
    return {"pid": os.getpid(), "forked": b"forkserver" in parent,
            "omp": os.environ.get("OMP_NUM_THREADS")}

HOSTS = json.loads(os.environ["TEST_HOSTS"])
helper = pathlib.Path("helper.py")
out = {}
with packsync.Cluster(hosts=HOSTS, threads_per_worker=1, dashboard_address=None,
                      scheduler_on="first-host") as cluster:
    with cluster.get_client() as client:
        out["scheduler_ns"] = client.run_on_scheduler(namespace)
        out["worker_ns"] = sorted(client.run(namespace).values())
        out["before"] = sorted(client.run(helper_value).values())
        helper.write_text("VALUE = 200\\n")
        out["first_sent"] = list(cluster.sync().sent)
        out["after_first"] = sorted(client.run(helper_value).values())
        out["on_scheduler"] = client.run_on_scheduler(helper_value)
        pathlib.Path("extra.py").write_text("from helper import VALUE\\nDOUBLE = VALUE * 2\\n")
        helper.write_text("VALUE = 300\\n")
        out["second_sent"] = list(cluster.sync().sent)
        out["after_second"] = sorted(client.run(helper_value).values())
        out["task"] = client.submit(doubled, pure=False).result()
        out["started"] = list(client.run(started).values())
        client.restart()
        out["restarted"] = list(client.run(started).values())
        out["after_restart"] = sorted(client.run(helper_value).values())
        cluster.scale(3)
        client.wait_for_workers(3, timeout=120)
        out["after_scale"] = sorted(client.run(helper_value).values())
        out["scaled_ns"] = sorted(client.run(namespace).values())
print(json.dumps(out))
"""


def test_scheduler_on_first_host_and_live_code_to_hosts(client: ClientEnv, hosts):
    alpha, beta = hosts
    specs = [h.spec(python=python_of(h)) for h in hosts]
    helper = client.workdir / "helper.py"
    try:
        completed = client.run(LIVE, check=False, timeout=600, TEST_HOSTS=json.dumps(specs))
        assert completed.returncode == 0, completed.stdout + completed.stderr
        out = json.loads(completed.stdout.strip().splitlines()[-1])
    finally:
        helper.write_text("VALUE = 100\n")
        (client.workdir / "extra.py").unlink(missing_ok=True)
    # the scheduler runs on the first host, a worker on each (each host its own namespace)
    assert out["scheduler_ns"] == alpha.namespace()
    assert out["worker_ns"] == sorted([alpha.namespace(), beta.namespace()])
    assert out["before"] == [100, 100]
    # edited working-directory code reaches the hosts' workers and scheduler, changed files only
    assert out["first_sent"] == ["helper.py"]
    assert out["after_first"] == [200, 200] and out["on_scheduler"] == 200
    assert out["second_sent"] == ["extra.py", "helper.py"]
    assert out["after_second"] == [300, 300] and out["task"] == 600
    # each worker is a fork of its nanny's forkserver, with Dask's pre-spawn environment,
    # and so is the worker a restart makes, which still runs the live code
    for worker in out["started"] + out["restarted"]:
        assert worker["forked"] and worker["omp"] == "1"
    assert not {w["pid"] for w in out["started"]} & {w["pid"] for w in out["restarted"]}
    assert out["after_restart"] == [300, 300]
    # a worker added later starts on the current code, on the host with the fewest workers
    assert out["after_scale"] == [300, 300, 300]
    assert out["scaled_ns"] == sorted([alpha.namespace()] * 2 + [beta.namespace()])
    for host in hosts:
        assert host.wait_no_processes() == {}


def _python_version(python: str) -> str:
    return subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                          capture_output=True, text=True, check=True).stdout.strip()


DEBIAN_PYTHON = "/usr/bin/python3"


@pytest.mark.skipif(not os.path.exists(DEBIAN_PYTHON), reason=f"no {DEBIAN_PYTHON}")
def test_patch_release_host_reads_a_shared_store(client: ClientEnv, hosts, tmp_path):
    alpha, beta = hosts
    client_version, host_version = _python_version(BASE_PYTHON), _python_version(DEBIAN_PYTHON)
    if client_version == host_version or client_version[:4] != host_version[:4]:
        pytest.skip(f"{DEBIAN_PYTHON} is {host_version}, the client {client_version}")
    shared = tmp_path / "shared-store"  # /tmp is visible to every host: a shared mount
    own = "~/.cache/packsync-shared"  # empty host caches: both build, from the store
    specs = [alpha.spec(python=DEBIAN_PYTHON, cache_dir=own),
             beta.spec(python=python_of(beta), cache_dir=own)]
    completed = run_seed(client, specs, shared_store=str(shared))
    result = seed_result(completed)
    assert result["result"] == 108
    assert sorted(w["python"] for w in result["workers"]) == sorted([client_version,
                                                                     host_version])
    assert (f"host 127.0.0.1:{alpha.port}: Python {host_version} for an environment locked "
            f"on Python {client_version}") in completed.stderr
    assert f"127.0.0.1:{beta.port}: Python" not in completed.stderr
    assert [h["sent"] for h in result["hosts"]] == [0, 0]  # nothing over SSH
    for host in hosts:
        cache = host.home / ".cache" / "packsync-shared"
        assert not (cache / "bin").exists()  # no uv: the archive is unpacked from the store
        copied = [p for p in (cache / "store").rglob("*") if p.is_file()]
        assert len(copied) == 1 and copied[0].stat().st_size < 100_000  # the code, checked
        assert any((cache / "envs").glob("*/.packsync-ready"))
        assert host.wait_no_processes() == {}


def test_host_python_of_another_minor_is_refused(client: ClientEnv, hosts):
    alpha, beta = hosts
    client_minor = ".".join(_python_version(BASE_PYTHON).split(".")[:2])
    found = {p: _python_version(p) for p in glob.glob(f"{sshd.PYENV}/versions/3.*/bin/python3")}
    others = sorted((tuple(int(n) for n in v.split(".")), p) for p, v in found.items()
                    if not v.startswith(f"{client_minor}."))
    if not others or others[-1][0] < (3, 8):
        pytest.skip("no Python of another major.minor on this machine")
    other = others[-1][1]  # the newest: the host script runs there, only the version differs
    other_version = found[other]
    result = fault(client, [alpha.spec(python=python_of(alpha)), beta.spec(python=other)])
    outcome = result["outcome"]
    assert outcome.startswith("LaunchError")
    assert f"host 127.0.0.1:{beta.port}: {other} is Python {other_version}" in outcome
    assert f"needs Python {_python_version(BASE_PYTHON)}" in outcome
    assert "python=" in outcome
    assert result["left"] == []
    for host in hosts:
        assert host.wait_no_processes() == {}


def test_hosts_download_an_s3_store_with_presigned_urls(client: ClientEnv, hosts, s3_endpoint):
    beta = hosts[1]
    cache = "~/.cache/packsync-s3"  # an empty host cache: everything comes from the store
    client.install("s3fs")  # the client's; the hosts get no fsspec from packsync
    completed = client.run(SEED, check=False, timeout=600, FSSPEC_S3_ENDPOINT_URL=s3_endpoint,
                           TEST_HOSTS=json.dumps([beta.spec(python=python_of(beta),
                                                            cache_dir=cache)]),
                           TEST_OPTIONS=json.dumps({"shared_store": "s3://packsync/store"}))
    result = seed_result(completed)
    assert result["result"] == 108
    assert [h["sent"] for h in result["hosts"]] == [0]  # nothing but the header over SSH
    assert result["hosts"][0]["received"] > 1_000_000  # the archive, from the store
    import s3fs

    objects = s3fs.S3FileSystem(endpoint_url=s3_endpoint, skip_instance_cache=True).find(
        "packsync/store/sha256")
    own = beta.home / ".cache" / "packsync-s3"
    kept = sorted(p.name for p in (own / "store" / "sha256").glob("*/*"))
    assert len(kept) == 1 and any(o.endswith(kept[0]) for o in objects)  # the code bundle
    assert not (own / "bin").exists()  # no uv there
    # a presigned URL is a credential: nowhere on the host's disk nor in the client's output
    signature = "X-Amz-Signature=[0-9a-f]{64}"
    leaked = subprocess.run(["grep", "-rlE", signature, str(beta.root)],
                            capture_output=True, text=True)
    assert leaked.returncode == 1 and leaked.stdout == "", leaked.stdout
    assert not re.search(signature, completed.stdout + completed.stderr)
    assert beta.wait_no_processes() == {}
