"""A real password-protected package index on 127.0.0.1 (pypiserver), holding a wheel that
exists nowhere else, for the private-index tests."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .projects import make_wheel
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


@contextmanager
def serve_index(root: Path, accounts: dict[str, str]) -> Iterator[PrivateIndex]:
    """Serve ``root/packages`` (with the probe wheel) to these ``{username: password}``;
    ``root/server.log`` logs every request."""
    from passlib.apache import HtpasswdFile

    packages = root / "packages"
    make_wheel(packages, PACKAGE, VERSION,
               modules={f"{MODULE}/__init__.py": f"MESSAGE = {MESSAGE!r}\n"})
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
