"""Every host made ready, concurrently and once, before any Dask process starts.

Per host: connect and probe (one round trip: a ready environment is found by its digest
and nothing else is sent). Hosts that lack the environment then get it one of two ways:

* **artifact** (the default): the environment the client built is packed once into a
  verified archive (``materialize.artifacts``) and unpacked on each host at its own
  path; hosts need no index, no Git server, no internet. With a shared store
  (``shared_store=``) hosts read it there, from a directory or with presigned URLs;
  without one the client sends it to one host and hosts pass it on to each other
  (``fanout``), so the client's upload does not grow with the cluster.
* **index**: each host's uv installs the lock from the package indexes, as the client
  does (hosts need to reach the indexes; their credentials travel on stdin only).

A patch-level Python difference only warns; another major.minor stops the launch naming
the host, both versions and ``python=``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import platform
import secrets
import tempfile
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from packsync.codesync.bundle import CodeBundle
from packsync.config import cache_expiry, cache_max_size
from packsync.errors import LaunchError, MaterializeError, PacksyncError
from packsync.hostside import artifact as artifact_format
from packsync.hostside import protocol
from packsync.launch.hosts.fanout import fan_out
from packsync.launch.hosts.spec import HostSpec
from packsync.launch.hosts.ssh import HostConnection, HostFailure, events
from packsync.lock.index_failures import explain
from packsync.lock.lockfile import Lock
from packsync.materialize.artifacts import Artifact, builder_platform, environment_artifact
from packsync.materialize.environments import Environment
from packsync.progress import NullReporter, Reporter, stage
from packsync.store import Store, sha256_file
from packsync.store.fsspec import FsspecStore
from packsync.uv_errors import scrubbed_tail
from packsync.uvtool import uv_binary

logger = logging.getLogger(__name__)

PRESIGN_SECONDS = 3600  # presigned URLs outlive one preparation, not much more
SERVE_TIMEOUT = 60.0  # a host that does not start or stop serving by then is left alone
HostInstall = Literal["artifact", "index"]
HOST_INSTALLS = ("artifact", "index")

# Settings a host's uv needs to reach the indexes as the client does (TLS roots, proxies).
_FORWARDED = (
    "SSL_CERT_FILE", "SSL_CERT_DIR", "UV_NATIVE_TLS", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
    "ALL_PROXY", "http_proxy", "https_proxy", "no_proxy", "all_proxy", "UV_HTTP_TIMEOUT",
)
# Failures of a peer that served an archive (not of the host that fetched it).
_PEER_FAULTS = ("transfer", "integrity")


@dataclass(frozen=True, kw_only=True, slots=True)
class PreparedHost:
    """A host whose environment is ready: where its interpreter and live code link are."""

    spec: HostSpec
    connection: HostConnection
    host_python: str  # the interpreter the environment was made from (runs the host side)
    python_version: str
    env_python: str
    link: str  # this cluster's live code link on the host ($PACKSYNC_CODE_LINK)
    cache: str
    cache_hit: bool
    sent_bytes: int  # sent by the client itself
    received_bytes: int = 0  # fetched from other hosts or a store
    # .pyc files reused from an earlier environment there and compiled; None when uv compiled
    bytecode: tuple[int, int] | None = None
    memory: int = 0  # bytes the host's processes may use (0: unknown), and its cores
    cores: int = 0

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True, kw_only=True, slots=True)
class Payload:
    """What a host may need, as the client has it."""

    lock: Lock
    store: Store
    code: CodeBundle | None
    uv_env: Mapping[str, str] = field(repr=False)  # index credentials: memory only
    shared_store: str | None = None  # the store's directory as the hosts see it, or its URL
    environment: Environment | None = None  # the client's build of the lock (artifact mode)
    cache: Path | None = None  # the client's cache (where it records packed archives)
    install: HostInstall = "artifact"
    builder: str = "auto"  # or "client", "first-host", a host's name: who builds the archive

    @property
    def store_directory(self) -> str:
        """The shared store's directory on the hosts; "" when they have none to read."""
        return "" if _is_url(self.shared_store) else self.shared_store or ""


@dataclass(frozen=True, kw_only=True, slots=True)
class _Probed:
    """A connected host and what its probe said."""

    spec: HostSpec
    connection: HostConnection
    probe: protocol.Probe

    @property
    def host_python(self) -> str:
        return str(self.probe["executable"])

    @property
    def ready(self) -> bool:
        return bool(self.probe["ready"] and self.probe["code_ready"])

    def prepared(self, done: Mapping[str, Any], *, sent: int = 0,
                 bytecode: tuple[int, int] | None = None) -> PreparedHost:
        return PreparedHost(
            spec=self.spec, connection=self.connection, host_python=self.host_python,
            python_version=str(self.probe["python_version"]),
            env_python=str(done["env_python"]), link=str(done.get("link", "")),
            cache=str(self.probe["cache"]),
            cache_hit=bool(done.get("cache_hit")) and sent == 0 and not done.get("received"),
            sent_bytes=sent, received_bytes=int(done.get("received", 0)), bytecode=bytecode,
            memory=int(self.probe.get("memory", 0)), cores=int(self.probe.get("cores", 0)),
        )


Connecting = Mapping[str, "asyncio.Future[HostConnection]"]


def connect_all(specs: Sequence[HostSpec]) -> dict[str, asyncio.Future[HostConnection]]:
    """An SSH connection to every host, opened from now on: while this machine prepares
    the environment, so that no key exchange is left on the launch's path."""
    return {spec.name: asyncio.ensure_future(HostConnection.open(spec)) for spec in specs}


async def abandon(connecting: Connecting) -> None:
    """Close the connections of a launch that ended before it used them."""
    for future in connecting.values():
        future.cancel()
    opened = [c for c in await asyncio.gather(*connecting.values(), return_exceptions=True)
              if isinstance(c, HostConnection)]
    for connection in opened:
        connection.close()
    await asyncio.gather(*(c.wait_closed() for c in opened), return_exceptions=True)


async def prepare_hosts(
    specs: Sequence[HostSpec], payload: Payload, *, reporter: Reporter | None = None,
    connecting: Connecting | None = None,
) -> list[PreparedHost]:
    """Prepare every host concurrently (through the connections ``connect_all`` opened, if
    given); on any failure close all and raise one error."""
    reporter = reporter or NullReporter()
    link = f"ssh-{os.getpid()}-{uuid.uuid4().hex[:12]}"
    connecting = connecting or connect_all(specs)
    with stage(reporter, "hosts", f"{len(specs)} hosts") as current:
        results = await asyncio.gather(
            *(_connect(s, connecting[s.name], payload, link, reporter) for s in specs),
            return_exceptions=True,
        )
        probed = [r for r in results if isinstance(r, _Probed)]
        failures: list[BaseException] = [r for r in results if isinstance(r, BaseException)]
        prepared = [p.prepared({**p.probe, "cache_hit": True}) for p in probed if p.ready]
        todo = [p for p in probed if not p.ready]
        for hit in prepared:
            reporter.step("hosts", f"{hit.name}: cache hit")
        if todo and not failures:
            try:
                made, failed = await _make_ready(todo, payload, link, reporter, probed)
            except BaseException:
                await close_hosts(prepared, links=True)
                for waiting in todo:
                    waiting.connection.close()
                raise
            prepared += made
            failures += failed
        if failures:
            await close_hosts(prepared, links=True)
            for waiting in todo:  # hosts the launch never got to
                waiting.connection.close()
                await waiting.connection.wait_closed()
            raise _combined(failures)
        hits = sum(p.cache_hit for p in prepared)
        current.detail = f"{len(prepared)} ready, {hits} cache hits"
    order = {s.name: i for i, s in enumerate(specs)}
    return sorted(prepared, key=lambda p: order[p.name])


async def _make_ready(todo: list[_Probed], payload: Payload, link: str, reporter: Reporter,
                      probed: list[_Probed]) -> tuple[list[PreparedHost], list[BaseException]]:
    if payload.install == "index":
        outcomes = await asyncio.gather(
            *(_install_from_indexes(p, payload, link, reporter) for p in todo),
            return_exceptions=True)
    else:
        builder = _builder(probed, payload.builder, conda=payload.lock.conda is not None)
        if builder is None:
            outcomes = await _install_artifact(todo, payload, link, reporter)
        else:
            outcomes = await _install_built_on_host(builder, todo, payload, link, reporter)
    made = [o for o in outcomes if isinstance(o, PreparedHost)]
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    for waiting in todo:
        if not any(m.spec is waiting.spec for m in made):
            waiting.connection.close()
    return made, failed


async def close_hosts(hosts: Sequence[PreparedHost], *, links: bool = True) -> None:
    """Remove this cluster's live links and close the connections."""
    async def one(host: PreparedHost) -> None:
        await host.connection.settle()
        try:
            if links and host.link:
                await host.connection.call(
                    [host.host_python], {"action": "cleanup", "links": [host.link]}
                )
        except Exception as error:  # the host may be gone: nothing to clean there
            logger.debug("cleanup on %s: %s", host.name, error)
        host.connection.close()

    await asyncio.gather(*(one(h) for h in hosts), return_exceptions=True)


def _combined(failures: Sequence[BaseException]) -> BaseException:
    if len(failures) == 1:
        return failures[0]
    errors = [f for f in failures if isinstance(f, PacksyncError)]
    if len(errors) != len(failures):
        return next(f for f in failures if not isinstance(f, PacksyncError))
    return LaunchError(
        f"{len(errors)} hosts could not be prepared:\n  "
        + "\n  ".join(e.message for e in errors),
        host=", ".join(e.host for e in errors if e.host),
        log_tail="\n".join(f"[{e.host}]\n{e.log_tail}" for e in errors if e.log_tail),
        hint="; ".join(dict.fromkeys(e.hint for e in errors if e.hint)),
    )


def interpreter_candidates(spec: HostSpec, version: str) -> list[str]:
    if spec.python:
        return [spec.python]
    major_minor = ".".join(version.split(".")[:2])
    return [f"python{major_minor}", "python3"]


async def _connect(spec: HostSpec, connecting: asyncio.Future[HostConnection],
                   payload: Payload, link: str, reporter: Reporter) -> _Probed:
    lock, code = payload.lock, payload.code
    if not connecting.done():
        reporter.step("hosts", f"{spec.name}: connecting")
    connection = await connecting
    try:
        header: protocol.Header = {
            "action": "probe",
            "cache": spec.cache_dir,
            "env_id": lock.env_id,
            "uv_sha256": await asyncio.to_thread(_uv_sha256),
            "wheels": [w.sha256 for w in lock.local_wheels],
            "code_id": code.code_id if code else "",
            "link": link,
            "store": payload.store_directory,
        }
        try:
            probe = cast(protocol.Probe, await connection.call(
                interpreter_candidates(spec, lock.python), header))
        except HostFailure as failure:
            raise LaunchError(
                f"host {spec.name} has no usable Python interpreter: {failure.message}",
                host=spec.name,
                log_tail=failure.log,
                hint=f"install Python {_major_minor(lock.python)} there, or name it with "
                "python= (per host: hosts=[{'address': ..., 'python': '/path/to/python'}])",
            ) from None
        if not (lock.conda and lock.conda.python and payload.install == "artifact"):
            # a conda environment brings its own Python: the host's only runs the host side
            _check_version(spec, str(probe["python_version"]), lock.python,
                           str(probe["executable"]), reporter)
        return _Probed(spec=spec, connection=connection, probe=probe)
    except BaseException:
        connection.close()
        raise


# --- artifact mode ---------------------------------------------------------------------------

async def _install_artifact(todo: list[_Probed], payload: Payload, link: str,
                            reporter: Reporter) -> list[PreparedHost | BaseException]:
    """The client's environment, packed once, unpacked on every host that lacks it."""
    if payload.environment is None or payload.cache is None:
        raise LaunchError("artifact mode needs the client's own build of the environment")
    for probed in todo:
        _check_platform(probed)
    artifact = await asyncio.to_thread(
        environment_artifact, payload.environment, payload.lock, store=payload.store,
        cache=payload.cache, workers_platform=builder_platform(), reporter=reporter)
    if payload.shared_store:
        return list(await asyncio.gather(
            *(_artifact_from_store(p, payload, artifact, link, reporter) for p in todo),
            return_exceptions=True))
    with tempfile.TemporaryDirectory(prefix="packsync-send-") as tmp:
        sender = _Sender(payload, artifact, Path(tmp), link, reporter)
        outcome = await fan_out(
            todo, send=sender.send, fetch=sender.fetch, serve=sender.serve,
            blames_peer=lambda e: isinstance(e, _PeerFault),
        )
        installed = await sender.installed(outcome.ready)
        _after_ready(todo, sender.stop_serving(outcome.serving))
    logger.info("archive of environment %s to %d hosts: %d sent by the client, %d passed "
                "between hosts", payload.lock.env_id[:12], len(todo), outcome.direct_sends,
                outcome.peer_sends)
    return [*installed, *(_as_error(t, e) for t, e in outcome.failed)]


def _after_ready(hosts: Sequence[_Probed], work: Coroutine[Any, Any, None]) -> None:
    """Stopping the peers' chunk servers and forgetting kept chunks runs while the workers
    start; each host's connection waits for it before it closes."""
    async def quietly() -> None:
        try:
            await work
        except Exception as error:  # a host gone since: its chunks go with its next launch
            logger.debug("ending the chunk servers: %s", error)

    task = asyncio.ensure_future(quietly())
    for host in hosts:
        host.connection.after_ready(task)


def _builder(probed: Sequence[_Probed], name: str, *, conda: bool = False) -> _Probed | None:
    """The host that builds the archive for the others, or None for this machine.

    ``auto``: this machine when every host can run what it builds (same OS and CPU, a
    glibc at least as new), else the host with the oldest glibc, whose build runs on
    every other host of its platform (a laptop of another OS never builds for Linux).
    An environment with a ``conda`` part is built here or nowhere.
    """
    if name == "client":
        return None
    if conda:
        _check_conda_builds_here(probed, name)
        return None
    if name == "auto":
        if all(_runs_builds_of_this_machine(p) for p in probed):
            return None
        chosen = min(probed, key=lambda p: _glibc(_libc_version(p)) or (1 << 30,))
        logger.info("host %s builds the environment for the others: this machine (%s) "
                    "cannot build for %s", chosen.spec.name, builder_platform(),
                    chosen.probe["platform"])
        return chosen
    if name == "first-host":
        return probed[0]
    for host in probed:
        if name in (host.spec.name, host.spec.address):
            return host
    raise LaunchError(f"builder={name!r} names none of the hosts",
                      hint="give 'auto', 'client', 'first-host' or the name of one of hosts=")


def _check_conda_builds_here(probed: Sequence[_Probed], name: str) -> None:
    """This machine builds an environment with conda packages: only it installs them (with
    the user's channel credentials, which stay here). They bring their own libraries, so a
    host with an older glibc runs them; a host of another OS or CPU cannot."""
    foreign = [p for p in probed
               if str(p.probe["platform"]).lower() != builder_platform().lower()]
    if name == "auto" and not foreign:
        return
    why = (f"builder={name!r} would have a host build it" if name != "auto" else
           f"{', '.join(p.spec.name for p in foreign)} run "
           f"{', '.join(sorted({str(p.probe['platform']) for p in foreign}))}, which this "
           f"machine ({builder_platform()}) cannot build for")
    raise LaunchError(
        f"this environment has conda packages, which only this machine installs, and {why}",
        host=", ".join(p.spec.name for p in foreign),
        hint="launch from a machine of the hosts' platform (a login node of the cluster, "
             "say) with builder='auto' or 'client'")


def _runs_builds_of_this_machine(probed: _Probed) -> bool:
    here_libc, host_libc = _glibc(platform.libc_ver()[1]), _glibc(_libc_version(probed))
    same = str(probed.probe["platform"]).lower() == builder_platform().lower()
    return same and not (here_libc and host_libc and host_libc < here_libc)


def _libc_version(probed: _Probed) -> str:
    return str(probed.probe.get("libc", "")).rpartition(" ")[2]


async def _install_built_on_host(builder: _Probed, todo: list[_Probed], payload: Payload,
                                 link: str, reporter: Reporter
                                 ) -> list[PreparedHost | BaseException]:
    """A host installs from the indexes and packs the archive; the others get it from it."""
    made: list[PreparedHost | BaseException] = []
    if builder in todo:
        made.append(await _install_from_indexes(builder, payload, link, reporter))
        todo = [t for t in todo if t is not builder]
    if not todo:
        return made
    if _is_url(payload.shared_store):
        raise LaunchError(f"a host ({builder.spec.name}) cannot build into the object store "
                          f"{payload.shared_store}", host=builder.spec.name,
                          hint="let this machine build (builder='client'), or give "
                          "shared_store= a directory every host mounts")
    reporter.step("hosts", f"{builder.spec.name}: packing the environment for the others")
    try:
        packed = cast(protocol.Packed, await builder.connection.call([builder.host_python], {
            "action": "pack", "cache": builder.spec.cache_dir, "env_id": payload.lock.env_id,
            "digest": payload.lock.digest, "store": payload.store_directory}))
    except HostFailure as failure:
        raise _materialize_error(builder.spec, payload.lock, failure, payload.uv_env) from None
    manifest = artifact_format.check_manifest(packed.get("manifest"),
                                              f"the archive packed on {builder.spec.name}")
    archive = Artifact(manifest=manifest,
                       sha256=hashlib.sha256(artifact_format.manifest_bytes(manifest)).hexdigest())
    if payload.store_directory:
        return [*made, *await asyncio.gather(
            *(_artifact_from_store(p, payload, archive, link, reporter) for p in todo),
            return_exceptions=True)]
    with tempfile.TemporaryDirectory(prefix="packsync-send-") as tmp:
        sender = _Sender(payload, archive, Path(tmp), link, reporter)
        serving = await sender.serve(builder)

        async def no_copy_here(probed: _Probed) -> _Probed:
            raise LaunchError(
                f"host {probed.spec.name} could not get the environment from "
                f"{builder.spec.name}, which built it, nor from any other host",
                host=probed.spec.name, hint="check that the hosts can reach each other")

        outcome = await fan_out(todo, send=no_copy_here, fetch=sender.fetch,
                                serve=sender.serve, blames_peer=lambda e: isinstance(e, _PeerFault),
                                direct=0, holders=[(builder, serving)])
        installed = await sender.installed(outcome.ready)
        _after_ready([builder, *todo], sender.stop_serving([serving, *outcome.serving]))
    return [*made, *installed, *(_as_error(t, e) for t, e in outcome.failed)]


def _check_platform(probed: _Probed) -> None:
    """A host must run what this machine built: its OS and CPU, a glibc at least as new."""
    name, there = probed.spec.name, str(probed.probe["platform"])
    if there.lower() != builder_platform().lower():
        raise LaunchError(
            f"host {name} is {there}; this machine ({builder_platform()}) cannot build its "
            "environment", host=name,
            hint="let a host build it (builder='auto' or 'first-host'), or use "
            "host_install='index' so that each host installs from the indexes",
        )
    here_libc, host_libc = _glibc(platform.libc_ver()[1]), _glibc(_libc_version(probed))
    if here_libc and host_libc and host_libc < here_libc:
        logger.warning("host %s has glibc %s, older than this machine's %s: compiled "
                       "packages built for this machine may not load there", name,
                       ".".join(map(str, host_libc)), ".".join(map(str, here_libc)))


def _glibc(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(n) for n in version.split(".")[:2])
    except ValueError:
        return ()


def _as_error(probed: _Probed, error: BaseException) -> BaseException:
    return error.error if isinstance(error, _PeerFault) else error


class _PeerFault(Exception):
    """A fetch from a peer that failed because of the peer (the fetching host is fine)."""

    def __init__(self, error: PacksyncError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(frozen=True, kw_only=True, slots=True)
class _Serving:
    host: _Probed
    process: Any
    peer: protocol.Peer


class _Sender:
    """How the archive reaches hosts, for ``fan_out``: a transfer makes a host a holder at
    once (it serves the others), while it unpacks the archive for itself in parallel."""

    def __init__(self, payload: Payload, artifact: Artifact, tmp: Path, link: str,
                 reporter: Reporter) -> None:
        self.payload = payload
        self.artifact = artifact
        self.tmp = tmp
        self.link = link
        self.reporter = reporter
        self.token = secrets.token_urlsafe(32)
        self.probed: dict[str, _Probed] = {}
        self.files: dict[str, Path] = {}
        self.unpacking: dict[str, asyncio.Future[PreparedHost]] = {}

    def _header(self, probed: _Probed) -> protocol.Header:
        self.probed[probed.spec.name] = probed
        code = self.payload.code
        return {
            "action": "prepare", "mode": "artifact", "cache": probed.spec.cache_dir,
            "env_id": self.payload.lock.env_id, "digest": self.payload.lock.digest,
            "manifest": self.artifact.manifest, "keep_chunks": True, "token": self.token,
            "code_id": code.code_id if code else "",
            "code_sha256": code.sha256 if code else "", "link": self.link, "store": "",
        }

    async def _file(self, sha256: str) -> Path:
        if sha256 not in self.files:
            path = self.tmp / sha256
            await asyncio.to_thread(self.payload.store.fetch, sha256, path)
            self.files[sha256] = path
        return self.files[sha256]

    async def _transfer(self, probed: _Probed, blobs: list[Path],
                        peer: protocol.Peer | None = None) -> _Probed:
        """The chunks (and the code) to the host, which unpacks them as they arrive. The
        host is a holder as soon as it has every chunk: it serves others while it unpacks."""
        header = self._header(probed)
        code = self.payload.code
        if code is not None and not probed.probe["code_ready"]:
            blobs = [*blobs, await self._file(code.sha256)]
        header["send"] = [{"kind": "object", "sha256": p.name, "size": p.stat().st_size}
                          for p in blobs]
        if peer is not None:
            header["peer"] = peer
        sent = sum(p.stat().st_size for p in blobs)
        arrived: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_received() -> None:
            if not arrived.done():
                arrived.set_result(None)

        call = asyncio.ensure_future(_call(probed, header, blobs, self.payload, self.reporter,
                                           from_peer=peer is not None, on_received=on_received))
        await asyncio.wait([cast("asyncio.Future[Any]", arrived), call],
                           return_when=asyncio.FIRST_COMPLETED)
        if not arrived.done():  # it ended before every chunk arrived: an error
            call.result()
        self.unpacking[probed.spec.name] = asyncio.ensure_future(
            self._unpacked(probed, call, sent))
        return probed

    @staticmethod
    async def _unpacked(probed: _Probed, call: asyncio.Future[dict[str, Any]],
                        sent: int) -> PreparedHost:
        try:
            done = await call
        except _PeerFault as fault:  # every chunk had arrived whole: the host's own failure
            raise fault.error from None
        return probed.prepared(done, sent=sent)

    async def send(self, probed: _Probed) -> _Probed:
        blobs = [await self._file(s) for s in self.artifact.chunks]
        self.reporter.step("hosts", f"{probed.spec.name}: sending "
                           f"{_size(sum(p.stat().st_size for p in blobs))}")
        return await self._transfer(probed, blobs)

    async def fetch(self, probed: _Probed, serving: _Serving) -> _Probed:
        self.reporter.step("hosts", f"{probed.spec.name}: from {serving.host.spec.name}")
        return await self._transfer(probed, [], serving.peer)

    async def installed(self, holders: Sequence[_Probed]) -> list[PreparedHost | BaseException]:
        """Every holder's environment, unpacked (or the error that stopped it)."""
        return list(await asyncio.gather(*(self.unpacking[h.spec.name] for h in holders),
                                         return_exceptions=True))

    async def serve(self, host: _Probed) -> _Serving:
        header: protocol.Header = {
            "action": "serve", "cache": host.spec.cache_dir, "store": "",
            "chunks": list(self.artifact.chunks), "token": self.token,
        }
        process = await host.connection.start([host.host_python], header)
        try:
            url = await asyncio.wait_for(self._serving_url(host, process), SERVE_TIMEOUT)
        except BaseException:
            process.close()
            raise
        return _Serving(host=host, process=process,
                        peer={"name": host.spec.name, "url": url, "token": self.token})

    @staticmethod
    async def _serving_url(host: _Probed, process: Any) -> str:
        name = host.spec.name
        async for event in events(process.stdout):
            if event.get("event") == "serving":
                return str(event["url"])
            if event.get("event") == "error":
                raise LaunchError(f"host {name} cannot serve: {event.get('message')}",
                                  host=name)
        raise LaunchError(f"host {name} ended before serving", host=name)

    async def stop_serving(self, serving: Sequence[_Serving]) -> None:
        """End the peers' servers: each then removes the chunks it kept."""
        for server in serving:
            server.process.stdin.write_eof()
        await asyncio.gather(*(asyncio.wait_for(s.process.wait_closed(), SERVE_TIMEOUT)
                               for s in serving), return_exceptions=True)
        for server in serving:
            server.process.close()
        kept = [p for name, p in self.probed.items()
                if name not in {s.host.spec.name for s in serving}]
        await asyncio.gather(*(self._forget_chunks(p) for p in kept), return_exceptions=True)

    async def _forget_chunks(self, probed: _Probed) -> None:
        await probed.connection.call([probed.host_python], {
            "action": "cleanup", "cache": probed.spec.cache_dir,
            "chunks": list(self.artifact.chunks), "token": self.token})


async def _artifact_from_store(probed: _Probed, payload: Payload, artifact: Artifact,
                               link: str, reporter: Reporter) -> PreparedHost:
    """A host that reads the archive from the shared store itself."""
    code = payload.code
    header: protocol.Header = {
        "action": "prepare", "mode": "artifact", "cache": probed.spec.cache_dir,
        "env_id": payload.lock.env_id, "digest": payload.lock.digest,
        "manifest": artifact.manifest, "code_id": code.code_id if code else "",
        "code_sha256": code.sha256 if code else "", "link": link,
        "store": payload.store_directory,
    }
    if not payload.store_directory:  # an object store: one presigned URL per object
        wanted = list(artifact.chunks)
        if code is not None and not probed.probe["code_ready"]:
            wanted.append(code.sha256)
        urls = await asyncio.to_thread(
            lambda: [_presigned(payload.store, s, probed.spec) for s in wanted])
        header["fetch"] = [{"kind": "object", "sha256": s, "url": u}
                           for s, u in zip(wanted, urls, strict=True)]
    reporter.step("hosts", f"{probed.spec.name}: from the store")
    done = await _call(probed, header, [], payload, reporter)
    return probed.prepared(done)


async def _call(probed: _Probed, header: protocol.Header, blobs: Sequence[Path],
                payload: Payload, reporter: Reporter, *, from_peer: bool = False,
                on_received: Callable[[], None] | None = None) -> dict[str, Any]:
    """Run ``prepare`` on a host; a failure becomes an error that names it (wrapped as a
    ``_PeerFault`` when the peer it fetched from is to blame)."""
    spec = probed.spec
    bytecode: list[tuple[int, int]] = []

    def on_event(event: dict[str, Any]) -> None:
        if event.get("event") == "step":
            reporter.step("hosts", f"{spec.name}: {event.get('message', '')}")
        elif event.get("event") == "bytecode":
            reused, compiled = int(event.get("reused", 0)), int(event.get("compiled", 0))
            bytecode.append((reused, compiled))
            logger.info("host %s: byte code of %d files reused from environment %s, "
                        "%d compiled", spec.name, reused, str(event.get("donor", ""))[:12],
                        compiled)
        elif event.get("event") == "received":
            reporter.step("hosts", f"{spec.name}: received")
            if on_received is not None:
                on_received()

    # the host collects its unused environments as the client's settings say
    sent: protocol.Header = {**header, "cache_expiry": cache_expiry(),
                             "cache_max_size": cache_max_size()}
    try:
        done = cast(protocol.Done, await probed.connection.call(
            [probed.host_python], sent, blobs=blobs, on_event=on_event))
    except HostFailure as failure:
        error = _materialize_error(spec, payload.lock, failure, payload.uv_env)
        if from_peer and failure.kind in _PEER_FAULTS:
            raise _PeerFault(error) from None
        raise error from None
    reporter.step("hosts", f"{spec.name}: ready")
    return {**done, "bytecode": bytecode[-1] if bytecode else None}


# --- index mode -------------------------------------------------------------------------------

async def _install_from_indexes(probed: _Probed, payload: Payload, link: str,
                                reporter: Reporter) -> PreparedHost:
    """The host's own uv installs the lock from the indexes (local wheels are sent)."""
    spec, probe = probed.spec, probed.probe
    lock, code = payload.lock, payload.code
    uv_sha = await asyncio.to_thread(_uv_sha256)
    with tempfile.TemporaryDirectory(prefix="packsync-send-") as tmp:
        send: list[protocol.Sent] = []
        fetch: list[protocol.Fetched] = []
        blobs: list[Path] = []
        if payload.store_directory:
            if not probe["has_uv"]:  # hosts copy it from the store, as batch jobs do
                await asyncio.to_thread(_publish_uv, payload.store, uv_sha)
        elif payload.shared_store:  # an object store: hosts download with presigned URLs
            wanted = [w.sha256 for w in lock.local_wheels if w.sha256 in probe["missing"]]
            if code is not None and not probe["code_ready"]:
                wanted.append(code.sha256)
            if not probe["has_uv"]:
                await asyncio.to_thread(_publish_uv, payload.store, uv_sha)
            kinds: list[tuple[Literal["uv", "object"], str]] = [("object", s) for s in wanted]
            if not probe["has_uv"]:
                kinds.append(("uv", uv_sha))
            urls = await asyncio.to_thread(
                lambda: [_presigned(payload.store, s, spec) for _, s in kinds])
            fetch = [{"kind": k, "sha256": s, "url": u}
                     for (k, s), u in zip(kinds, urls, strict=True)]
        else:
            if not probe["has_uv"]:
                uv = Path(uv_binary())
                send.append({"kind": "uv", "sha256": uv_sha, "size": uv.stat().st_size})
                blobs.append(uv)
            objects = [w.sha256 for w in lock.local_wheels if w.sha256 in probe["missing"]]
            if code is not None and not probe["code_ready"]:
                objects.append(code.sha256)
            for sha256 in objects:
                path = Path(tmp) / sha256
                await asyncio.to_thread(payload.store.fetch, sha256, path)
                send.append({"kind": "object", "sha256": sha256, "size": path.stat().st_size})
                blobs.append(path)
        sent = sum(int(s["size"]) for s in send)
        reporter.step("hosts", f"{spec.name}: sending {_size(sent)}"
                      + (f", {len(fetch)} objects from the store" if fetch else ""))
        header: protocol.Header = {
            "action": "prepare", "mode": "index",
            "cache": spec.cache_dir,
            "env_id": lock.env_id,
            "digest": lock.digest,
            "lock": lock.text,
            "uv_sha256": uv_sha,
            "send": send,
            "wheels_detail": [{"filename": w.filename, "sha256": w.sha256}
                              for w in lock.local_wheels],
            "uv_env": {**_forwarded(), **payload.uv_env},
            "python": probed.host_python,
            "code_id": code.code_id if code else "",
            "code_sha256": code.sha256 if code else "",
            "link": link,
            "store": payload.store_directory,
            "fetch": fetch,
        }
        done = await _call(probed, header, blobs, payload, reporter)
    return probed.prepared(done, sent=sent, bytecode=done.get("bytecode"))


def _materialize_error(
    spec: HostSpec, lock: Lock, failure: HostFailure, uv_env: Mapping[str, str]
) -> PacksyncError:
    if failure.kind == "connection":
        return LaunchError(
            f"lost host {spec.name} while preparing it: {failure.message}", host=spec.name,
            hint="the host stopped or left the network; launch again once it is back, or "
            "without it")
    explained = explain(
        failure.log, uv_env, MaterializeError,
        action=f"installing environment {lock.env_id[:12]} on host {spec.name}",
        digest=lock.digest,
    )
    if explained is not None:
        explained.host = spec.name
        return explained
    return MaterializeError(
        f"materializing environment {lock.env_id[:12]} failed on host {spec.name}: "
        f"{failure.message}",
        host=spec.name,
        digest=lock.digest,
        log_tail=scrubbed_tail(failure.log, uv_env),
        hint=_HINTS.get(failure.kind,
                        "the log is the host's; nothing of this environment will be used there"),
    )


_HINTS = {
    "disk": "free space on the host (or set host_cache_dir=); nothing half-made is used",
    "integrity": "an archive or object was altered on its way; nothing of it was used",
    "transfer": "the host could not fetch the archive; check the network between the hosts",
    "hostile": "the archive was refused as unsafe; nothing of it was unpacked",
}


def _check_version(
    spec: HostSpec, actual: str, wanted: str, python: str, reporter: Reporter
) -> None:
    if _major_minor(actual) != _major_minor(wanted):
        raise LaunchError(
            f"host {spec.name}: {python} is Python {actual}, but the environment needs "
            f"Python {wanted}",
            host=spec.name,
            path=python,
            hint=f"install Python {_major_minor(wanted)} on {spec.name}, or name one with "
            f"python= (per host: hosts=[{{'address': {spec.address!r}, 'python': ...}}])",
        )
    if actual != wanted:
        logger.warning("host %s: Python %s for an environment locked on Python %s",
                       spec.name, actual, wanted)
        reporter.step("hosts", f"{spec.name}: Python {actual} (client {wanted})")


def _major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _forwarded() -> dict[str, str]:
    return {k: os.environ[k] for k in _FORWARDED if k in os.environ}


def _publish_uv(store: Store, sha256: str) -> None:
    store.put(Path(uv_binary()), sha256)  # a no-op (a touch) when it is there


_UV_SHA: dict[tuple[str, int, int], str] = {}


def _uv_sha256() -> str:
    path = uv_binary()
    info = os.stat(path)
    key = (path, info.st_size, info.st_mtime_ns)
    if key not in _UV_SHA:
        _UV_SHA[key] = sha256_file(Path(path))
    return _UV_SHA[key]


def _is_url(store: str | None) -> bool:
    return bool(store) and "://" in str(store) and not str(store).startswith("file://")


def _presigned(store: Store, sha256: str, spec: HostSpec) -> str:
    """A GET URL for one store object, valid for ``PRESIGN_SECONDS``: a bearer credential."""
    if isinstance(store, FsspecStore):
        try:
            return str(store.fs.sign(f"{store.root}/sha256/{sha256[:2]}/{sha256}",
                                     expiration=PRESIGN_SECONDS))
        except NotImplementedError:
            pass
    raise LaunchError(
        f"host {spec.name} cannot read the store {store!r}: it gives no presigned URLs",
        host=spec.name,
        hint="use an s3:// store, or shared_store= a directory every host mounts",
    )


def _size(count: int) -> str:
    if count == 0:
        return "no files"
    return f"{count / 1e6:.1f} MB" if count >= 100_000 else f"{count / 1e3:.1f} kB"
