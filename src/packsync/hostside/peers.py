"""A host serving an environment's chunks to the other hosts of the same launch.

So that the client's uplink does not carry one copy per host, every host that holds the
artifact serves it on the cluster network while the launch lasts: the hosts that still
need it fetch from those that have it, and the number of holders doubles each round. A
peer serves only the chunks it was told of, only to requests that carry the launch's
token (a secret sent to hosts on their SSH channels), and only on the address the
client reached it at. Receivers verify every chunk's SHA-256, so a peer can fail or
stall a transfer, never alter an environment.
"""

from __future__ import annotations

import hmac
import os
import shutil
import socket
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_PREFIX = "/chunk/"


class ChunkServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: str, chunks: Mapping[str, str], token: str) -> None:
        self.address_family = socket.AF_INET6 if ":" in address else socket.AF_INET
        super().__init__((address, 0), _Handler)
        self.chunks = dict(chunks)
        self.expected = f"Bearer {token}".encode()
        self.served = 0

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: ChunkServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        given = self.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, self.server.expected):
            self.send_error(403)
            return
        sha256 = self.path[len(_PREFIX):] if self.path.startswith(_PREFIX) else ""
        path = self.server.chunks.get(sha256)
        if path is None:
            self.send_error(404)
            return
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed below
        except OSError:
            self.send_error(404)
            return
        with handle:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(os.fstat(handle.fileno()).st_size))
            self.end_headers()
            shutil.copyfileobj(handle, self.wfile, 1 << 20)
        self.server.served += 1

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # requests carry a token: nothing about them is logged


def start(address: str, chunks: Mapping[str, str], token: str) -> ChunkServer:
    """A server of ``chunks`` (SHA-256 -> local path) on ``address``, running in a thread."""
    server = ChunkServer(address, chunks, token)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def chunk_url(base: str, sha256: str) -> str:
    return f"{base}{_PREFIX}{sha256}"


def own_address() -> str:
    """The address the client reached this host at (``SSH_CONNECTION``), else loopback."""
    parts = os.environ.get("SSH_CONNECTION", "").split()
    return parts[2] if len(parts) == 4 else "127.0.0.1"
