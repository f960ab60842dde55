"""SSH transport (asyncssh): one connection per host, the host-side script run over it.

Every command on a host is ``python -I -c LOADER``: the loader reads the host-side
package (``packsync.hostside``) and a JSON header from the channel's stdin, so arguments
and credentials never show on the host's command lines. Replies are JSON lines on
stdout; a process's own log is its stderr.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shlex
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from packsync.errors import LaunchError
from packsync.hostside import loader, protocol
from packsync.launch.hosts.spec import HostSpec

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 20.0
# a host that stops answering (power lost, network cut: no connection reset ever comes)
# is taken as gone after KEEPALIVE_INTERVAL x 3 seconds of silence
KEEPALIVE_INTERVAL = 10.0
# AES-GCM before ChaCha20 (asyncssh's first choice): with the CPU's AES instructions it
# takes half the client's CPU to send an environment's archive (measured: 0.10 s against
# 0.19 s per 64 MB); the user's own encryption_algs win
CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com",
           "chacha20-poly1305@openssh.com", "aes128-ctr", "aes192-ctr", "aes256-ctr")


def python_command(candidates: Iterable[str]) -> str:
    """A shell command running the loader with the first interpreter found on the host."""
    loop = " ".join(shlex.quote(c) for c in candidates)
    return (
        f"for p in {loop}; do if command -v \"$p\" >/dev/null 2>&1; then "
        f"exec \"$p\" -I -c {shlex.quote(loader.LOADER)}; fi; done; "
        "echo 'packsync: no Python interpreter found (tried:' "
        f"{loop}')' >&2; exit 127"
    )


class HostConnection:
    """An open SSH connection to one host."""

    def __init__(self, spec: HostSpec, connection: Any) -> None:
        self.spec = spec
        self.connection = connection
        self.pending: set[asyncio.Future[None]] = set()  # see ``after_ready``

    @property
    def name(self) -> str:
        return self.spec.name

    @classmethod
    async def open(cls, spec: HostSpec) -> HostConnection:
        """Connect, turning every failure into a ``LaunchError`` that names the host."""
        try:
            import asyncssh
        except ImportError as error:  # pragma: no cover - a dependency
            raise LaunchError(
                "SSH hosts need the asyncssh package", host=spec.name,
                hint="pip install asyncssh",
            ) from error
        options = spec.ssh_options()
        options.setdefault("connect_timeout", CONNECT_TIMEOUT)
        options.setdefault("keepalive_interval", KEEPALIVE_INTERVAL)
        options.setdefault("encryption_algs", list(CIPHERS))
        if "known_hosts" in options and options["known_hosts"] is None:
            logger.warning(
                "the SSH host key of %s is not checked (known_hosts=None): an impostor at "
                "that address would receive the environment, the code and index "
                "credentials; add the host to ~/.ssh/known_hosts instead", spec.name)
        try:
            connection = await asyncssh.connect(spec.address, **options)
        except asyncssh.PermissionDenied as error:
            raise LaunchError(
                f"host {spec.name} refused the SSH login"
                f"{' of ' + spec.username if spec.username else ''}: {error.reason}",
                host=spec.name,
                hint="add your public key to ~/.ssh/authorized_keys on the host, or pass "
                "connect_options=dict(username=..., client_keys=[...])",
            ) from None
        except asyncssh.HostKeyNotVerifiable as error:
            raise LaunchError(
                f"the SSH host key of {spec.name} is not trusted: {error.reason}",
                host=spec.name,
                hint="add the host to ~/.ssh/known_hosts (ssh into it once), or pass "
                "connect_options=dict(known_hosts=...)",
            ) from None
        except (OSError, asyncio.TimeoutError, asyncssh.Error) as error:
            reason = getattr(error, "reason", None) or str(error) or type(error).__name__
            raise LaunchError(
                f"cannot reach host {spec.name}: {reason}",
                host=spec.name,
                hint="check the address and port, and that an SSH server runs there",
            ) from None
        return cls(spec, connection)

    async def call(
        self,
        python: Iterable[str],
        header: Mapping[str, Any],
        *,
        blobs: Iterable[Path] = (),
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Run one host-side action to its end; its last event (an ``error`` raises).
        A connection lost meanwhile (the host died or left the network) is a
        ``HostFailure`` of kind ``connection``."""
        try:
            last, log = await self._run(python, header, blobs, on_event)
        except (OSError, _connection_errors()) as error:
            reason = getattr(error, "reason", None) or str(error) or type(error).__name__
            raise HostFailure(self.name, f"the SSH connection was lost ({reason})",
                              kind="connection") from None
        if not last:
            raise HostFailure(self.name, "the host-side script ended without an answer", log)
        if last.get("event") == "error":
            raise HostFailure(self.name, last["message"], last.get("log", ""),
                              kind=last.get("kind", ""))
        return last

    async def _run(self, python: Iterable[str], header: Mapping[str, Any],
                   blobs: Iterable[Path], on_event: Callable[[dict[str, Any]], None] | None
                   ) -> tuple[dict[str, Any], str]:
        async with self.session(python, header, blobs=blobs) as process:
            last: dict[str, Any] = {}
            stderr = asyncio.ensure_future(process.stderr.read())
            try:
                async for event in events(process.stdout):
                    last = event
                    if event.get("event") in protocol.FINAL_EVENTS:
                        break
                    if on_event is not None:
                        on_event(event)
                try:
                    process.stdin.write_eof()
                except OSError:
                    pass  # the script ended already
                raw = await asyncio.wait_for(asyncio.shield(stderr), 5)
            except asyncio.TimeoutError:
                raw = b""
            finally:
                if not stderr.done():
                    stderr.cancel()
                await asyncio.gather(stderr, return_exceptions=True)
            log = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
        return last, log

    async def start(self, python: Iterable[str], header: Mapping[str, Any]) -> Any:
        """A channel running the host-side script, sent with ``header`` on its stdin."""
        process = await self.connection.create_process(python_command(python), encoding=None)
        try:
            process.stdin.write(loader.stdin_prefix())
            versioned = {**header, "version": protocol.VERSION}
            process.stdin.write(json.dumps(versioned).encode() + b"\n")
        except BrokenPipeError:
            pass  # the command ended at once (no such interpreter): its stderr says why
        except BaseException:
            process.close()
            raise
        return process

    @asynccontextmanager
    async def session(
        self, python: Iterable[str], header: Mapping[str, Any], *, blobs: Iterable[Path] = ()
    ) -> AsyncIterator[Any]:
        """A channel running the host-side script with ``header``; blobs follow it on stdin."""
        process = await self.start(python, header)
        try:
            try:
                for path in blobs:
                    with open(path, "rb") as handle:
                        while block := handle.read(1 << 20):
                            process.stdin.write(block)
                            await process.stdin.drain()
                await process.stdin.drain()
            except BrokenPipeError:
                pass  # the script ended early: its last event or stderr says why
            yield process
        finally:
            process.close()

    def after_ready(self, work: asyncio.Future[None]) -> None:
        """Work on the host that the launch need not wait for (its peers' chunk servers
        stopped, say), done before the connection closes (``settle``)."""
        self.pending.add(work)
        work.add_done_callback(self.pending.discard)

    async def settle(self) -> None:
        """Wait for the work handed to ``after_ready``."""
        if self.pending:
            await asyncio.gather(*self.pending, return_exceptions=True)

    def close(self) -> None:
        self.connection.close()

    async def wait_closed(self) -> None:
        await self.connection.wait_closed()


def _connection_errors() -> type[Exception]:
    import asyncssh

    return asyncssh.Error


class HostFailure(Exception):
    """What the host-side script reported; the caller turns it into a stage error."""

    def __init__(self, host: str, message: str, log: str = "", kind: str = "") -> None:
        super().__init__(f"{host}: {message}")
        self.host = host
        self.message = message
        self.log = log
        self.kind = kind


async def events(stream: Any) -> AsyncIterator[dict[str, Any]]:
    """The host-side script's JSON events, one a line; any other line is only logged."""
    while True:
        raw = await stream.readline()
        if not raw:
            return
        line = raw.decode(errors="replace").strip()
        if not line:
            continue
        try:
            event = json.loads(line)
        except ValueError:
            logger.debug("host said: %s", line)
            continue
        if isinstance(event, dict):
            yield event
