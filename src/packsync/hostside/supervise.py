"""Child processes on a host, ended with their process group when the client goes away.

A host cannot rely on the client to clean up: the client may crash or lose the network.
Every child runs in a process group of its own, and a watchdog ends that group as soon
as the SSH channel's stdin reaches its end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from typing import IO

from packsync.hostside import buildlock
from packsync.hostside.protocol import HostError

STOP_GRACE = 5.0
_INDEX_VARIABLES = (  # a long-running process needs no index secret
    "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "UV_INDEX", "UV_DEFAULT_INDEX",
    "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS",
)
_DROPPED = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")


def process_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` for a Dask process: no index secret, nothing that would make its
    interpreter import from anywhere but its environment."""
    return {k: v for k, v in environ.items()
            if k not in _DROPPED and not k.startswith(_INDEX_VARIABLES)}


class Watchdog:
    """Ends the current child process group when the client goes away (stdin EOF)."""

    def __init__(self) -> None:
        self.child: subprocess.Popen[bytes] | None = None
        self.gone = threading.Event()

    def start(self, stdin: IO[bytes]) -> None:
        def wait() -> None:
            try:
                while stdin.read(65536):
                    pass
            except (OSError, ValueError):
                pass
            self.gone.set()
            kill_group(self.child)

        threading.Thread(target=wait, daemon=True).start()


def kill_group(child: subprocess.Popen[bytes] | None) -> None:
    if child is None or child.poll() is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(child.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + STOP_GRACE
        while time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.05)


def supervised(argv: list[str], env: dict[str, str] | None,
               watchdog: Watchdog | None) -> tuple[int, str]:
    """Run a child in a group of its own, ended with it if the client goes away.

    During a build the child holds the builders' lock too, and is recorded in it: a
    builder killed meanwhile leaves the lock held until the next one ends the child
    (``buildlock``). The child's group is ended if this process is interrupted.
    """
    lock = buildlock.current()
    child = subprocess.Popen(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True,
        pass_fds=() if lock is None else (lock.fd,),
    )
    if lock is not None:
        lock.child_started(child.pid)
    if watchdog is not None:
        watchdog.child = child
    try:
        output, _ = child.communicate()
    except BaseException:
        kill_group(child)
        raise
    if watchdog is not None:
        watchdog.child = None
        if watchdog.gone.is_set():
            raise HostError("the client went away", kind="cancelled")
    return child.returncode, output.decode(errors="replace")
