"""Hosts on a network of their own: one network namespace per host, joined to this machine
by a veth pair on test-only 10.200.x addresses.

Such a host reaches this machine's end of its link (SSH, a scheduler bound there) and,
through it, the other hosts of the test, but nothing on this machine's 127.0.0.1 (a test
index) and nothing beyond: an air-gapped compute node.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from . import sshd

FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


def available() -> str | None:
    """Why namespaced hosts cannot run here, or None."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return "needs root and iproute2 for network namespaces"
    return sshd.available()


def _ip(*args: str, namespace: str | None = None) -> None:
    inside = ["ip", "netns", "exec", namespace] if namespace else []
    subprocess.run([*inside, "ip", *args], check=True, capture_output=True)


@contextmanager
def isolated_hosts(names: Sequence[str], root: Path, key: Path,
                   hidden: tuple[str, ...]) -> Iterator[list[sshd.SshHost]]:
    """One sshd per name, each in a network and mount namespace of its own."""
    tag = f"{os.getpid() % 10000}"
    made: list[tuple[str, str]] = []
    hosts: list[sshd.SshHost] = []
    forwarding = FORWARD.read_text()
    try:
        FORWARD.write_text("1\n")  # hosts reach each other through this machine
        for number, name in enumerate(names, start=1):
            namespace, link = f"ps{tag}-{number}", f"ps{tag}v{number}"
            subnet = f"10.200.{100 + number}"
            _ip("netns", "add", namespace)
            made.append((namespace, link))
            _ip("link", "add", link, "type", "veth", "peer", "name", f"{link}p")
            _ip("link", "set", f"{link}p", "netns", namespace)
            _ip("addr", "add", f"{subnet}.1/24", "dev", link)
            _ip("link", "set", link, "up")
            _ip("addr", "add", f"{subnet}.2/24", "dev", f"{link}p", namespace=namespace)
            _ip("link", "set", f"{link}p", "up", namespace=namespace)
            _ip("link", "set", "lo", "up", namespace=namespace)
            _ip("route", "add", "default", "via", f"{subnet}.1", namespace=namespace)
            host = sshd.SshHost(name=name, root=root / name, port=22, key=key, hidden=hidden,
                                address=f"{subnet}.2", netns=namespace)
            host.root.mkdir(parents=True, exist_ok=True)
            host.start()
            hosts.append(host)
        yield hosts
    finally:
        for host in hosts:
            host.stop()
        for namespace, link in made:
            subprocess.run(["ip", "link", "del", link], capture_output=True, check=False)
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, check=False)
        FORWARD.write_text(forwarding)
