"""Servers on loopback for tests: free ports, and waiting for a server to listen."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_listening(port: int, server: subprocess.Popen[bytes], log: Path,
                   timeout: float = 30) -> None:
    """Return once ``port`` accepts connections; raise with the server's log if it exits
    or does not listen in time."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(log.read_text()) from None
            time.sleep(0.1)
