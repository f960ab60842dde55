"""Processes a benchmark starts and times: each in a group of its own, none left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

TIMEOUT = 600.0


def run(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    """Run a process in its own group; its wall time and stdout. Fails loudly, leaves no group."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        command,
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        tail = "\n".join(err.strip().splitlines()[-30:])
        raise RuntimeError(f"{' '.join(command[:4])} … exited {proc.returncode}:\n{tail}")
    return seconds, out


def child(python: Path, script: Path, env: dict[str, str], *args: str) -> dict[str, Any]:
    """One measurement from ``script``, which prints it as one JSON line, its last."""
    _, out = run([str(python), str(script), *args], env, script.parent)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def stop_strays(root: Path) -> None:
    """Kill, by pid, any process still running a program from under ``root`` (ours only)."""
    prefix = str(root) + os.sep
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and os.fsdecode(argv[0]).startswith(prefix):
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except ProcessLookupError:
                pass
