"""Real SSH hosts on loopback for tests: one OpenSSH server per host.

Each host runs in a mount namespace of its own (``unshare --mount``) where ``/root``
(root's HOME) is the host's own directory, and the client's directories (its venv,
its cache, this checkout) are hidden under empty tmpfs mounts: a "clean" host that
has Python and SSH, and neither packsync nor the client's packages. The host's
processes are exactly those in its mount namespace, which is how tests find orphans.

A host may have a disk of its own (``own_disk``): a fresh ext4 filesystem in a sparse
image, mounted as its home inside its namespace, so that the kernel lets it go when the
host stops. Benchmarks use it: on a disk shared with a test suite that has just deleted
many files, this kernel's ext4 spends up to half a millisecond per new file skipping
recently deleted inodes, which a real host's disk does not.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .servers import free_port, server_process, wait_ready

SSHD = "/usr/sbin/sshd"
PYENV = "/root/.pyenv"


def available() -> str | None:
    """Why real hosts cannot run here, or None."""
    if not os.path.exists(SSHD) or shutil.which("ssh-keygen") is None:
        return "OpenSSH server not installed (make system-packages)"
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return "needs root and unshare for per-host mount namespaces"
    return None


def keygen(key: Path) -> Path:
    """An ed25519 key pair without passphrase at ``key`` (and ``key.pub``), unless there."""
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                       check=True)
    return key


def client_key(directory: Path) -> Path:
    return keygen(directory / "id_ed25519")


@dataclass
class SshHost:
    """One sshd standing for one machine."""

    name: str
    root: Path
    port: int
    key: Path
    hidden: tuple[str, ...]
    set_env: dict[str, str] = field(default_factory=dict)
    address: str = "127.0.0.1"
    netns: str | None = None  # a network namespace of its own (see tests/support/netns.py)
    own_disk: bool = False
    proc: subprocess.Popen[bytes] | None = None

    @property
    def home(self) -> Path:
        home = self.root / "home"
        if self.own_disk and self.proc is not None:  # seen through the host's namespace
            return Path(f"/proc/{self.proc.pid}/root{home}")
        return home

    @property
    def cache(self) -> Path:
        """The host's packsync cache as the test sees it (``~/.cache/packsync`` there)."""
        return self.home / ".cache" / "packsync"

    def options(self, key: Path | None = None) -> dict[str, Any]:
        return {"known_hosts": None, "client_keys": [str(key or self.key)], "username": "root"}

    def spec(self, **extra: Any) -> dict[str, Any]:
        return {"address": self.address, "port": self.port, "connect_options": self.options(),
                **extra}

    def start(self) -> None:
        home = self.home
        home.mkdir(parents=True, exist_ok=True)
        mounts = []
        if self.own_disk:
            image = self.root / "disk.img"
            with open(image, "wb") as handle:
                handle.truncate(16 << 30)  # sparse: only what the host writes takes space
            subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
            mounts.append(f"mount -o loop {shlex.quote(str(image))} {shlex.quote(str(home))}")
        mounts.append(f"mkdir -p {shlex.quote(str(home / '.ssh'))}")
        mounts.append(f"cp {shlex.quote(f'{self.key}.pub')} "
                      f"{shlex.quote(str(home / '.ssh' / 'authorized_keys'))}")
        host_key = keygen(self.root / "ssh_host_ed25519_key")
        config = self.root / "sshd_config"
        lines = [
            f"Port {self.port}", f"ListenAddress {self.address}", f"HostKey {host_key}",
            f"PidFile {self.root / 'sshd.pid'}", "AuthorizedKeysFile .ssh/authorized_keys",
            "StrictModes no", "PermitRootLogin prohibit-password", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "UsePAM no", "LogLevel ERROR",
        ]
        lines += [f"SetEnv {k}={v}" for k, v in self.set_env.items()]
        config.write_text("\n".join(lines) + "\n")
        Path("/run/sshd").mkdir(exist_ok=True)
        if os.path.isdir(PYENV):  # keep the client's Python release visible on the host
            mounts.append(f"mkdir -p {shlex.quote(str(home / '.pyenv'))}")
            mounts.append(f"mount --bind {PYENV} {shlex.quote(str(home / '.pyenv'))}")
        mounts.append(f"mount --rbind {shlex.quote(str(home))} /root")
        mounts += [f"mount -t tmpfs tmpfs {shlex.quote(d)}" for d in self.hidden
                   if os.path.isdir(d)]
        script = " && ".join([*mounts, f"exec {SSHD} -D -e -f {shlex.quote(str(config))}"])
        self.log = open(self.root / "sshd.log", "ab")  # noqa: SIM115
        inside = ["ip", "netns", "exec", self.netns] if self.netns else []
        self.proc = subprocess.Popen(
            [*inside, "unshare", "--mount", "--propagation", "private", "sh", "-c", script],
            stdout=self.log, stderr=self.log, start_new_session=True,
        )
        wait_ready(self.proc, self.root / "sshd.log", self.port, host=self.address, timeout=10)

    def namespace(self) -> str | None:
        if self.proc is None:
            return None
        try:
            return os.readlink(f"/proc/{self.proc.pid}/ns/mnt")
        except OSError:
            return None

    def processes(self) -> dict[int, str]:
        """Every process on this host except its sshd listener: pid -> command line."""
        namespace = self.namespace()
        found = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or self.proc is None or int(entry) == self.proc.pid:
                continue
            try:
                if os.readlink(f"/proc/{entry}/ns/mnt") != namespace:
                    continue
                command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            found[int(entry)] = command.decode(errors="replace").strip()
        return found

    def wait_no_processes(self, timeout: float = 20) -> dict[int, str]:
        deadline = time.monotonic() + timeout
        left = self.processes()
        while left and time.monotonic() < deadline:
            time.sleep(0.2)
            left = self.processes()
        return left

    def ssh(self, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ssh", "-p", str(self.port), "-i", str(self.key), "-o", "BatchMode=yes",
             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
             "-o", "LogLevel=ERROR", f"root@{self.address}", command],
            capture_output=True, text=True, timeout=60, check=False,
        )

    def listening_ports(self) -> set[int]:
        """TCP ports a process of this host (other than its sshd listener) listens on."""
        inodes = set()
        for pid in self.processes():
            try:
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
            except OSError:
                continue
        return {port for port, state, inode in tcp_sockets() if state == "0A" and inode in inodes}

    def kill_everything(self) -> None:
        """The machine dies: its sshd and every process on it."""
        for pid in self.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.stop()

    def stop(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            self.proc = None


def tcp_sockets() -> list[tuple[int, str, str]]:
    """Every TCP socket of this network namespace: (local port, state, inode); state "0A"
    is listening, "01" established."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            found.append((int(fields[1].rsplit(":", 1)[1], 16), fields[3], fields[9]))
    return found


def start_host(name: str, root: Path, key: Path, hidden: tuple[str, ...],
               **kwargs: Any) -> SshHost:
    host = SshHost(name=name, root=root / name, port=free_port(), key=key, hidden=hidden,
                   **kwargs)
    host.root.mkdir(parents=True, exist_ok=True)
    host.start()
    return host


@contextmanager
def loopback_hosts(names: Sequence[str], root: Path, key: Path, hidden: tuple[str, ...],
                   own_disk: bool = False) -> Iterator[list[SshHost]]:
    """One host per name on loopback (see ``start_host``), all stopped at the end."""
    started: list[SshHost] = []
    try:
        for name in names:
            started.append(start_host(name, root, key, hidden, own_disk=own_disk))
        yield started
    finally:
        for host in started:
            host.stop()


@contextmanager
def plain_sshd(root: Path) -> Iterator[tuple[int, Path]]:
    """An OpenSSH server on 127.0.0.1 in this machine's own namespaces (nothing hidden), that
    accepts one key, which only the caller holds: its port and that key."""
    conf = root / "sshd"
    conf.mkdir()
    keygen(conf / "host")
    key = keygen(root / "key")
    shutil.copy(f"{key}.pub", conf / "authorized_keys")
    port = free_port()
    (conf / "config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {conf / 'host'}\n"
        f"PidFile {conf / 'pid'}\nAuthorizedKeysFile {conf / 'authorized_keys'}\n"
        "StrictModes no\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    with server_process([SSHD, "-D", "-e", "-f", str(conf / "config")], root / "sshd.log", port,
                        timeout=20):
        yield port, key
