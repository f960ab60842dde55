"""The host-side script's pure helpers (it runs on hosts with only the standard library)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from packsync.hostside import install, layout, pyc_reuse
from packsync.hostside.install import lock_for_interpreter, venv_version
from tests.support.caches import make_ready

LOCK = 'lock-version = "1.0"\nrequires-python = ">=3.11.7"\n\n[[packages]]\nname = "six"\n'


def test_an_earlier_patch_release_installs_the_same_packages() -> None:
    relaxed = lock_for_interpreter(LOCK, "3.11.2")
    assert 'requires-python = ">=3.11"\n' in relaxed
    assert relaxed.replace('">=3.11"', '">=3.11.7"') == LOCK


def test_the_same_or_a_later_patch_or_another_minor_keeps_the_lock() -> None:
    for version in ("3.11.7", "3.11.9", "3.12.1", "3.10.13", "garbage"):
        assert lock_for_interpreter(LOCK, version) == LOCK
    assert lock_for_interpreter('requires-python = ">=3.11"\n', "3.11.2").endswith('3.11"\n')


def test_venv_version_reads_pyvenv_cfg(tmp_path: Path) -> None:
    (tmp_path / "pyvenv.cfg").write_text("home = /usr/bin\nversion_info = 3.11.2\n")
    assert venv_version(str(tmp_path)) == "3.11.2"


def test_job_index_environment_takes_credentials_only_for_named_indexes() -> None:
    from packsync.hostside.jobs import job_index_environment

    job = {"UV_INDEX_PRIVATE_USERNAME": "alice", "UV_INDEX_PRIVATE_PASSWORD": "pw",
           "UV_INDEX_OTHER_PASSWORD": "not-handed", "NETRC": "/nonexistent"}
    env = job_index_environment(["private=https://pkgs.example.com/simple/",
                                 "pkgs-example-org=https://pkgs.example.org/simple/"], job)
    assert env == {
        "UV_INDEX": "private=https://pkgs.example.com/simple/ "
                    "pkgs-example-org=https://pkgs.example.org/simple/",
        "UV_INDEX_PRIVATE_USERNAME": "alice", "UV_INDEX_PRIVATE_PASSWORD": "pw",
        "NETRC": os.devnull,
    }
    assert job_index_environment([], job) == {}


def _environment(path: Path, version: str, *, ready: bool = True, used: float = 0.0) -> Path:
    path.mkdir(parents=True)
    (path / "pyvenv.cfg").write_text(f"home = /usr/bin\nimplementation = CPython\n"
                                     f"version_info = {version}\n")
    if ready:
        make_ready(path, used=used)
    return path


def test_the_byte_code_donor_is_the_latest_ready_environment_of_the_same_python(
    tmp_path: Path,
) -> None:
    def bytecode_donor(envs: str, path: str) -> str | None:
        return pyc_reuse.bytecode_donor(envs, path, layout.READY_MARKER,
                                        install.trusted_donor)

    envs = tmp_path / "envs"
    new = _environment(envs / "new", "3.12.4", ready=False)
    assert bytecode_donor(str(envs), str(new)) is None  # nothing earlier
    _environment(envs / "older", "3.12.1", used=1000)
    latest = _environment(envs / "latest", "3.12.4", used=2000)
    _environment(envs / "unfinished", "3.12.4", ready=False)
    _environment(envs / "other-minor", "3.11.9", used=3000)
    assert bytecode_donor(str(envs), str(new)) == str(latest)
    planted = _environment(envs / "planted", "3.12.4", ready=False)
    (planted / layout.READY_MARKER).write_text("digest\n")  # not a marker packsync wrote
    os.utime(planted / layout.READY_MARKER, (5000, 5000))
    assert bytecode_donor(str(envs), str(new)) == str(latest)
    (tmp_path / "conda").mkdir()  # no pyvenv.cfg: never a donor nor given one
    assert bytecode_donor(str(envs), str(tmp_path / "conda")) is None


@pytest.mark.attack("tampered store object")
def test_download_keeps_only_verified_bytes_and_never_names_the_url(tmp_path: Path) -> None:
    import hashlib
    from http.server import BaseHTTPRequestHandler

    import pytest

    from packsync.hostside.protocol import HostError
    from packsync.hostside.transfer import download
    from tests.support.servers import serve_http

    class Objects(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if "Signature=secret" not in self.path:
                self.send_error(403)
                return
            body = b"tampered" if "bad" in self.path else b"a wheel"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    sha = hashlib.sha256(b"a wheel").hexdigest()
    with serve_http(Objects) as base:
        download(f"{base}/good?Signature=secret", sha, str(tmp_path / "good"))
        assert (tmp_path / "good").read_bytes() == b"a wheel"
        with pytest.raises(HostError) as tampered:
            download(f"{base}/bad?Signature=secret", sha, str(tmp_path / "bad"))
        assert tampered.value.kind == "integrity" and not (tmp_path / "bad").exists()
        with pytest.raises(HostError) as refused:
            download(f"{base}/good?Signature=expired", sha, str(tmp_path / "refused"))
        assert "HTTP 403" in str(refused.value) and sha in str(refused.value)
        assert "Signature" not in str(refused.value) + refused.value.log
        assert sorted(p.name for p in tmp_path.iterdir()) == ["good"]


def test_the_host_side_package_imports_nothing_but_the_standard_library() -> None:
    import ast

    from packsync.hostside import loader

    modules = loader.module_names()
    assert "packsync.hostside.main" in modules and "packsync.hostside.pyc_reuse" in modules
    root = Path(loader.__file__).parent
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or name.startswith(
                    "packsync.hostside") or name == "__future__", f"{path.name} imports {name}"


def test_the_frequent_host_actions_import_none_of_the_heavy_modules() -> None:
    # ``probe`` and ``run`` start a process on every host at every launch: what they
    # import is on the launch's path
    code = ("import sys; import packsync.hostside.main; "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith(('packsync', "
            "'tarfile', 'urllib.request', 'http.server', 'concurrent')))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.split()
    heavy = {"tarfile", "urllib.request", "http.server", "concurrent", "packsync.hostside.install",
             "packsync.hostside.artifact", "packsync.hostside.peers",
             "packsync.hostside.prepare", "packsync.hostside.sharing", "packsync.hostside.jobs"}
    assert "packsync.hostside.main" in loaded and not heavy & set(loaded)


@pytest.mark.attack("tampered shared-store code, script or archive")
def test_the_loader_runs_the_package_from_memory_and_the_bootstrap_checks_its_hash(
    tmp_path: Path,
) -> None:
    import hashlib
    import json
    import subprocess
    import sys

    from packsync.hostside import loader, protocol

    python = getattr(sys, "_base_executable", "") or sys.executable
    header = {"version": protocol.VERSION, "action": "probe", "cache": str(tmp_path / "c"),
              "env_id": "e" * 32, "uv_sha256": "0" * 64}
    probe = subprocess.run([python, "-I", "-c", loader.LOADER], capture_output=True,
                           input=loader.stdin_prefix() + json.dumps(header).encode() + b"\n",
                           check=True, timeout=60)
    event = json.loads(probe.stdout)
    assert event["event"] == "probe" and event["ready"] is False
    assert event["cache"] == str(tmp_path / "c")
    old = subprocess.run([python, "-I", "-c", loader.LOADER], capture_output=True, timeout=60,
                         input=loader.stdin_prefix() + b'{"version": 1, "action": "probe"}\n')
    assert json.loads(old.stdout)["kind"] == "protocol"  # an older client is refused

    package = tmp_path / "package.zip"
    package.write_bytes(loader.package())
    sha = hashlib.sha256(package.read_bytes()).hexdigest()
    args = ["worker", "--store", str(tmp_path / "none"), "--lock", "a" * 64, "--artifact",
            "b" * 64, "--", "-c", "pass"]
    fine = subprocess.run([python, "-I", "-c", loader.BOOTSTRAP, str(package), sha, *args],
                          capture_output=True, text=True, timeout=60)
    assert fine.returncode == 2 and "lock sha256:" + "a" * 64 in fine.stderr  # it ran
    package.write_bytes(package.read_bytes() + b"\0")
    altered = subprocess.run([python, "-I", "-c", loader.BOOTSTRAP, str(package), sha, *args],
                             capture_output=True, text=True, timeout=60)
    assert altered.returncode == 1 and "refusing to run it" in altered.stderr


def test_the_cache_layout_is_defined_once_for_the_client_and_the_hosts() -> None:
    """Markers and layout names are written only in ``packsync.hostside``: every other
    module (the client's materialize, code sync, the store) imports them from there."""
    import ast

    source = Path(__file__).parents[2] / "src" / "packsync"
    defined_there = {".packsync-ready", ".packsync-manifest.json", ".packsync", "wheels",
                     "envs"}
    for path in source.rglob("*.py"):
        if path.parent.name == "hostside":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                assert node.value.value not in defined_there, (
                    f"{path.relative_to(source)}:{node.lineno} defines {node.value.value!r}; "
                    "import it from packsync.hostside.layout")
