"""A real password-protected package index on 127.0.0.1 (pypiserver), holding a wheel that
exists nowhere else, for the private-index tests."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .servers import free_port, server_process
from .venvs import uv_install

PACKAGE = "psprivate-probe"
MODULE = "psprivate_probe"
VERSION = "1.0.0"
MESSAGE = "served by the private index"


@dataclass(frozen=True)
class PrivateIndex:
    """A running pypiserver: its plain URL and the accounts it accepts."""

    host: str
    port: int
    accounts: dict[str, str]
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/simple/"

    def url_with(self, username: str, password: str = "") -> str:
        userinfo = f"{username}:{password}" if password else username
        return f"http://{userinfo}@{self.host}:{self.port}/simple/"

    def install_probe(self, python: Path | str, username: str, password: str) -> None:
        """Install ``PACKAGE`` from this index into the environment of ``python``."""
        uv_install(python, "--no-deps", "--index-url", self.url_with(username, password), PACKAGE,
                   capture=True)


def build_wheel(directory: Path) -> Path:
    """A minimal, valid pure-Python wheel of ``PACKAGE``, written by hand (no build backend)."""
    dist_info = f"{MODULE}-{VERSION}.dist-info"
    files = {
        f"{MODULE}/__init__.py": f"MESSAGE = {MESSAGE!r}\n",
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: {VERSION}\n",
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: packsync-tests\n"
        "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{name},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = "\n".join(record) + "\n"
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / f"{MODULE}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return wheel


@contextmanager
def serve_index(root: Path, accounts: dict[str, str]) -> Iterator[PrivateIndex]:
    """Serve ``root/packages`` (with the probe wheel) to these ``{username: password}``;
    ``root/server.log`` logs every request."""
    from passlib.apache import HtpasswdFile

    packages = root / "packages"
    build_wheel(packages)
    htpasswd = HtpasswdFile(str(root / "htpasswd"), new=True)
    for username, password in accounts.items():
        htpasswd.set_password(username, password)
    htpasswd.save()
    port = free_port()
    command = [sys.executable, "-m", "pypiserver", "run", "-v", "-i", "127.0.0.1", "-p", str(port),
               "-a", "download,list,update", "-P", str(root / "htpasswd"), "--disable-fallback",
               str(packages)]
    with server_process(command, root / "server.log", port, path="/health") as process:
        yield PrivateIndex(host="127.0.0.1", port=port, accounts=dict(accounts), process=process)
