"""The program every Dask process of a cluster runs: its spec from stdin, never argv."""

from __future__ import annotations

import signal
import subprocess
import sys

from distributed.security import Security

from packsync.launch.processes import SchedulerRole


class Scheduler(SchedulerRole):
    interpreter = sys.executable


def test_a_process_starts_from_its_pickled_spec_and_stops_on_sigterm():
    security = Security.temporary()
    process = Scheduler(spec={"cls": "distributed.Scheduler", "opts": {
        "host": "127.0.0.1", "port": 0, "dashboard_address": None, "protocol": "tls",
        "security": security}})
    argv = process.command()
    assert not any(security.tls_scheduler_key.splitlines()[1] in part for part in argv)
    child = subprocess.Popen(argv, stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=False)
    try:
        assert child.stdin is not None and child.stderr is not None
        child.stdin.write(process.payload())
        child.stdin.close()
        for raw in child.stderr:
            line = raw.decode(errors="replace")
            if process.ready_text in line:
                process.on_ready(line)
                break
        assert process.address.startswith("tls://127.0.0.1:")  # the Security reached it
        child.send_signal(signal.SIGTERM)
        child.stderr.read()
        assert child.wait(timeout=30) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
