"""Every host made ready, concurrently and once, before any Dask process starts.

Per host: connect, probe (one round trip: a ready environment is found by its
digest and nothing else is sent), else send what the host lacks (the uv binary, local
wheels, the code bundle; or nothing when hosts read a shared store) and materialize
there. With an object store (``shared_store="s3://..."``) hosts need no fsspec: the
client presigns a short-lived GET URL for each object a host lacks and sends it on the
channel's stdin (a URL is a bearer credential: never on a command line, in a log or a
file); the host downloads it and checks its SHA-256. A patch-level Python difference
only warns; another major.minor stops the launch naming the host, both versions and ``python=``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from packsync.codesync.bundle import CodeBundle
from packsync.errors import LaunchError, MaterializeError, PacksyncError
from packsync.launch.hosts.spec import HostSpec
from packsync.launch.hosts.ssh import HostConnection, HostFailure
from packsync.lock.index_failures import explain
from packsync.lock.lockfile import Lock
from packsync.progress import NullReporter, Reporter, stage
from packsync.store import Store, sha256_file
from packsync.store.fsspec import FsspecStore
from packsync.uv_errors import scrubbed_tail
from packsync.uvtool import uv_binary

logger = logging.getLogger(__name__)

PRESIGN_SECONDS = 3600  # presigned URLs outlive one preparation, not much more

# Settings a host's uv needs to reach the indexes as the client does (TLS roots, proxies).
_FORWARDED = (
    "SSL_CERT_FILE", "SSL_CERT_DIR", "UV_NATIVE_TLS", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
    "ALL_PROXY", "http_proxy", "https_proxy", "no_proxy", "all_proxy", "UV_HTTP_TIMEOUT",
)


@dataclass(frozen=True, kw_only=True, slots=True)
class PreparedHost:
    """A host whose environment is ready: where its interpreter and live code link are."""

    spec: HostSpec
    connection: HostConnection
    host_python: str  # the interpreter the environment was made from (runs hostside)
    python_version: str
    env_python: str
    link: str  # this cluster's live code link on the host ($PACKSYNC_CODE_LINK)
    cache: str
    cache_hit: bool
    sent_bytes: int
    # .pyc files reused from an earlier environment there and compiled; None when uv compiled
    bytecode: tuple[int, int] | None = None

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

    @property
    def store_directory(self) -> str:
        """The shared store's directory on the hosts; "" when they have none to read."""
        return "" if _is_url(self.shared_store) else self.shared_store or ""


async def prepare_hosts(
    specs: Sequence[HostSpec], payload: Payload, *, reporter: Reporter | None = None
) -> list[PreparedHost]:
    """Prepare every host concurrently; on any failure close all and raise one error."""
    reporter = reporter or NullReporter()
    link = f"ssh-{os.getpid()}-{uuid.uuid4().hex[:12]}"
    with stage(reporter, "hosts", f"{len(specs)} hosts") as current:
        results = await asyncio.gather(
            *(_prepare_one(s, payload, link, reporter) for s in specs), return_exceptions=True
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        prepared = [r for r in results if isinstance(r, PreparedHost)]
        if failures:
            await close_hosts(prepared, links=True)
            raise _combined(failures)
        hits = sum(p.cache_hit for p in prepared)
        current.detail = f"{len(prepared)} ready, {hits} cache hits"
    return prepared


async def close_hosts(hosts: Sequence[PreparedHost], *, links: bool = True) -> None:
    """Remove this cluster's live links and close the connections."""
    async def one(host: PreparedHost) -> None:
        try:
            if links and host.link:
                await host.connection.call(
                    [host.host_python], {"action": "cleanup", "links": [host.link]}
                )
        except Exception as error:  # the host may be gone: nothing to clean there
            logger.debug("cleanup on %s: %s", host.name, error)
        host.connection.close()

    await asyncio.gather(*(one(h) for h in hosts), return_exceptions=True)


def _combined(failures: list[BaseException]) -> BaseException:
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


async def _prepare_one(
    spec: HostSpec, payload: Payload, link: str, reporter: Reporter
) -> PreparedHost:
    lock = payload.lock
    reporter.step("hosts", f"{spec.name}: connecting")
    connection = await HostConnection.open(spec)
    try:
        candidates = interpreter_candidates(spec, lock.python)
        uv_sha = await asyncio.to_thread(_uv_sha256)
        code = payload.code
        probe_header = {
            "action": "probe",
            "cache": spec.cache_dir,
            "env_id": lock.env_id,
            "uv_sha256": uv_sha,
            "wheels": [w.sha256 for w in lock.local_wheels],
            "code_id": code.code_id if code else "",
            "link": link,
            "store": payload.store_directory,
        }
        try:
            probe = await connection.call(candidates, probe_header)
        except HostFailure as failure:
            raise LaunchError(
                f"host {spec.name} has no usable Python interpreter: {failure.message}",
                host=spec.name,
                log_tail=failure.log,
                hint=f"install Python {_major_minor(lock.python)} there, or name it with "
                "python= (per host: hosts=[{'address': ..., 'python': '/path/to/python'}])",
            ) from None
        host_python = str(probe["executable"])
        version = str(probe["python_version"])
        _check_version(spec, version, lock.python, host_python, reporter)
        if probe["ready"] and probe["code_ready"]:
            reporter.step("hosts", f"{spec.name}: cache hit")
            return PreparedHost(
                spec=spec, connection=connection, host_python=host_python,
                python_version=version, env_python=str(probe["env_python"]),
                link=str(probe.get("link", "")), cache=str(probe["cache"]),
                cache_hit=True, sent_bytes=0,
            )
        done, sent = await _send_and_build(
            connection, spec, payload, probe, host_python, uv_sha, link, reporter
        )
        reporter.step("hosts", f"{spec.name}: ready")
        return PreparedHost(
            spec=spec, connection=connection, host_python=host_python,
            python_version=version, env_python=str(done["env_python"]),
            link=str(done.get("link", "")), cache=str(probe["cache"]),
            cache_hit=bool(done.get("cache_hit")) and sent == 0, sent_bytes=sent,
            bytecode=done.get("bytecode"),
        )
    except BaseException:
        connection.close()
        raise


async def _send_and_build(
    connection: HostConnection,
    spec: HostSpec,
    payload: Payload,
    probe: Mapping[str, Any],
    host_python: str,
    uv_sha: str,
    link: str,
    reporter: Reporter,
) -> tuple[dict[str, Any], int]:
    lock, code = payload.lock, payload.code
    with tempfile.TemporaryDirectory(prefix="packsync-send-") as tmp:
        send: list[dict[str, Any]] = []
        fetch: list[dict[str, Any]] = []
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
            kinds = [("object", s) for s in wanted] + ([] if probe["has_uv"] else [("uv", uv_sha)])
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
        header = {
            "action": "prepare",
            "cache": spec.cache_dir,
            "env_id": lock.env_id,
            "digest": lock.digest,
            "lock": lock.text,
            "uv_sha256": uv_sha,
            "send": send,
            "wheels_detail": [{"filename": w.filename, "sha256": w.sha256}
                              for w in lock.local_wheels],
            "uv_env": {**_forwarded(), **payload.uv_env},
            "python": host_python,
            "code_id": code.code_id if code else "",
            "code_sha256": code.sha256 if code else "",
            "link": link,
            "store": payload.store_directory,
            "fetch": fetch,
            "pyc_reuse": _pyc_reuse_source(),
        }
        bytecode: list[tuple[int, int]] = []

        def on_event(event: dict[str, Any]) -> None:
            if event.get("event") == "step":
                reporter.step("hosts", f"{spec.name}: {event.get('message', '')}")
            elif event.get("event") == "bytecode":
                reused, compiled = int(event.get("reused", 0)), int(event.get("compiled", 0))
                bytecode.append((reused, compiled))
                logger.info("host %s: byte code of %d files reused from environment %s, "
                            "%d compiled", spec.name, reused,
                            str(event.get("donor", ""))[:12], compiled)

        try:
            done = await connection.call([host_python], header, blobs=blobs, on_event=on_event)
        except HostFailure as failure:
            raise _materialize_error(spec, lock, failure, payload.uv_env) from None
    return {**done, "bytecode": bytecode[-1] if bytecode else None}, sent


def _materialize_error(
    spec: HostSpec, lock: Lock, failure: HostFailure, uv_env: Mapping[str, str]
) -> PacksyncError:
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
        hint="the log is the host's; nothing of this environment will be used there",
    )


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


@functools.cache
def _pyc_reuse_source() -> str:
    """``materialize/pyc_reuse.py``, sent in the prepare header as the host-side script is."""
    source = resources.files("packsync.materialize").joinpath("pyc_reuse.py")
    return source.read_text(encoding="utf-8")


def _size(count: int) -> str:
    if count == 0:
        return "no files"
    return f"{count / 1e6:.1f} MB" if count >= 100_000 else f"{count / 1e3:.1f} kB"

