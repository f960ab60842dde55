"""The messages between the client and the host side: one typed definition for both ends.

A host-side run reads one JSON header line from its stdin (bytes may follow it), and
answers with JSON events, one per line on stdout, the last being ``probe``, ``done``,
``serving``, ``cleaned`` or ``error``. ``prepare`` says ``received`` as soon as every
object it was to get is here: in artifact mode the host unpacks the archive as its
chunks arrive, and can serve them to other hosts from that moment. Credentials (index
passwords, presigned URLs, the peer token) only ever travel in a header, on the SSH
channel's stdin.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any, Literal, TypedDict

VERSION = 2  # a host side of another version refuses the header instead of guessing

Action = Literal["probe", "prepare", "pack", "run", "cleanup", "serve"]
FINAL_EVENTS = ("probe", "done", "packed", "serving", "cleaned", "error")


class Sent(TypedDict):
    """One object that follows the header on stdin, in order."""

    kind: Literal["uv", "object"]
    sha256: str
    size: int


class Fetched(TypedDict):
    """One object the host downloads itself with a presigned URL (a bearer credential)."""

    kind: Literal["uv", "object"]
    sha256: str
    url: str


class Peer(TypedDict):
    """Another host that serves the artifact's chunks for this launch."""

    name: str
    url: str  # http://address:port
    token: str  # this launch's secret: peers answer only requests that carry it


class Wheel(TypedDict):
    filename: str
    sha256: str


class Header(TypedDict, total=False):
    """What the client asks of a host. ``action`` and ``version`` are always present."""

    version: int
    action: Action
    cache: str  # the host's cache directory (``~`` is the host's home)
    store: str  # a store directory every host mounts, or "" for the host's own
    env_id: str
    digest: str
    uv_sha256: str
    code_id: str
    code_sha256: str
    link: str  # this cluster's live code link name on the host
    wheels: list[str]  # probe: the local wheels' SHA-256 (for index mode)
    # prepare
    mode: Literal["artifact", "index"]
    manifest: dict[str, Any]  # artifact mode: the environment's archive manifest
    send: list[Sent]
    fetch: list[Fetched]
    peer: Peer  # artifact mode: fetch the chunks the host lacks from this peer
    keep_chunks: bool  # the host will serve the chunks to others: keep them for ``token``
    lock: str  # index mode: the lock's text
    wheels_detail: list[Wheel]
    uv_env: dict[str, str]  # index mode: what the host's uv needs (credentials included)
    python: str
    cache_expiry: float  # the client's ``packsync.cache-expiry``, in seconds
    cache_max_size: int | None  # the client's ``packsync.cache-max-size`` in bytes; None: no cap
    # serve (and cleanup: chunks kept and not served)
    chunks: list[str]
    token: str  # this launch's secret: the peers' key, and its kept chunks' name on hosts
    # run
    argv: list[str]
    env: dict[str, str]
    env_defaults: dict[str, str]  # set unless the host's environment has them
    cwd: str
    # cleanup
    pgids: list[int]
    links: list[str]


class Probe(TypedDict):
    event: Literal["probe"]
    python_version: str
    executable: str
    base_executable: str  # the interpreter a relocated environment points at
    platform: str  # platform.system()-platform.machine()
    libc: str  # "glibc 2.36", or "" when unknown
    home: str
    memory: int  # bytes its processes may use (``resources``), 0 when unknown
    cores: int
    cache: str
    ready: bool
    code_ready: bool
    has_uv: bool
    missing: list[str]  # objects (wheels or chunks) the host's store lacks
    env_python: str
    link: str


class Done(TypedDict, total=False):
    event: Literal["done"]
    env_python: str
    cache_hit: bool
    link: str
    received: int  # bytes of chunks fetched from peers or the store


class Packed(TypedDict):
    event: Literal["packed"]
    manifest: dict[str, Any]  # the archive this host packed of its ready environment


class HostError(Exception):
    """A failure to report to the client, with the tail of the log that explains it."""

    def __init__(self, message: str, log: str = "", kind: str = "materialize") -> None:
        super().__init__(message)
        self.log = log
        self.kind = kind


OUTPUT = {"events": True}  # False in command-line mode: stdout belongs to the program
_ONE_AT_A_TIME = threading.Lock()  # an archive is unpacked in a thread of its own


def emit(event: str, **fields: object) -> None:
    """One event to the client; in command-line mode, steps go to stderr as plain lines."""
    if not OUTPUT["events"]:
        if event == "step":
            sys.stderr.write(f"packsync: {fields.get('message', '')}\n")
            sys.stderr.flush()
        return
    line = json.dumps({"event": event, **fields}) + "\n"
    with _ONE_AT_A_TIME:
        sys.stdout.write(line)
        sys.stdout.flush()
