"""Servers on loopback for tests, each started the same way: a free port, a log file, a wait
until it answers, and a stop by PID when the ``with`` block ends."""

from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

BIN = Path(sys.executable).parent  # the test environment's scripts (moto_server, ...)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ready(server: subprocess.Popen[bytes], log: Path, port: int, *,
               host: str = "127.0.0.1", path: str | None = None, timeout: float = 30) -> None:
    """Return once ``host:port`` accepts connections (or answers ``GET path``); raise with the
    server's log if it exits or is not ready in time."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if path is None:
                socket.create_connection((host, port), timeout=1).close()
            else:
                urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=1).close()
            return
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(log.read_text()) from None
            time.sleep(0.1)


def stop(server: subprocess.Popen[bytes]) -> None:
    """Terminate ``server`` by PID; kill it if it does not exit within 10 s."""
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@contextmanager
def server_process(command: Sequence[str], log: Path, port: int, *, path: str | None = None,
                   timeout: float = 30) -> Iterator[subprocess.Popen[bytes]]:
    """``command`` running, its output in ``log``, ready on ``port`` (see ``wait_ready``)."""
    with log.open("wb") as output:
        server = subprocess.Popen(list(command), stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_ready(server, log, port, path=path, timeout=timeout)
        yield server
    finally:
        stop(server)


@contextmanager
def serve_http(handler: Callable[..., http.server.BaseHTTPRequestHandler], *,
               threaded: bool = True) -> Iterator[str]:
    """``http://127.0.0.1:PORT``, served by ``handler`` from a thread of this process."""
    kind = http.server.ThreadingHTTPServer if threaded else http.server.HTTPServer
    server = kind(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def collector(*, threaded: bool = True) -> Iterator[tuple[str, list[str]]]:
    """A server that answers 404 to everything and keeps the Authorization header of every
    request (empty when none): where a secret must never arrive."""
    headers: list[str] = []

    class Collector(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            headers.append(self.headers.get("Authorization", ""))
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with serve_http(Collector, threaded=threaded) as url:
        yield url, headers


@contextmanager
def moto_s3(log: Path) -> Iterator[str]:
    """A moto S3 server on 127.0.0.1: its endpoint URL."""
    port = free_port()
    with server_process([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], log,
                        port):
        yield f"http://127.0.0.1:{port}"
