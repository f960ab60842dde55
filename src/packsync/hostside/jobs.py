"""Command-line mode: a worker command for batch systems and Kubernetes.

``worker`` makes the environment ready from a shared store, then execs the
environment's interpreter with the given arguments; a failure is reported into the store
for the client (``jobreport``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import urllib.parse
from typing import Any

from packsync.hostside import (
    artifact,
    install,
    jobreport,
    layout,
    lease,
    lifecycle,
    livecode,
    placeholders,
    protocol,
    uvconfig,
)
from packsync.hostside.prepare import unpack_code, unpacking
from packsync.hostside.protocol import HostError
from packsync.hostside.supervise import process_environment
from packsync.hostside.transfer import copy_verified, disk_error


def worker_main(argv: list[str]) -> int:
    """``worker --store DIR --lock SHA (--artifact SHA | --uv SHA) [--code SHA] -- ARGS``:
    make the environment ready from a shared store, then exec its interpreter with ARGS.

    A failure is written to stderr and, with ``--report KEY``, into the store for the
    client (``jobreport``). With ``--link NAME`` the processes import the code through a
    live link of that name, which the client's ``sync()`` swaps to newer code."""
    parser = argparse.ArgumentParser(prog="packsync-worker")
    parser.add_argument("--store", required=True)
    parser.add_argument("--lock", required=True, help="SHA-256 of the lock in the store")
    parser.add_argument("--artifact", default="", help="SHA-256 of the environment's manifest")
    parser.add_argument("--uv", default="", help="SHA-256 of the uv binary (index mode)")
    parser.add_argument("--code", default="", help="SHA-256 of the code bundle in the store")
    parser.add_argument("--wheels", default="", help="comma-separated FILENAME=SHA256")
    parser.add_argument("--cache", default=os.environ.get("PACKSYNC_CACHE_DIR",
                                                          "~/.cache/packsync"))
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--index", action="append", default=[], metavar="NAME=URL",
                        help="an index whose credentials the job's environment gives uv")
    parser.add_argument("--index-options", default="",
                        help="SHA-256 of uv's per-index settings (JSON) in the store")
    parser.add_argument("--report", default="", help="key of the failure reports in the store")
    parser.add_argument("--link", default="", help="name of the cluster's live code link")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)
    protocol.OUTPUT["events"] = False
    args = options.args[1:] if options.args[:1] == ["--"] else options.args
    store = os.path.abspath(os.path.expanduser(options.store))
    cache = layout.cache_root(options.cache)
    try:
        lock_text = _verified_text(store, options.lock, "lock")
        if options.artifact:
            build = unpacking(artifact.check_manifest(
                json.loads(_verified_text(store, options.artifact, "environment manifest")),
                f"manifest sha256:{options.artifact[:12]}"),
                lambda sha: layout.blob_path(store, sha))
        else:
            uv = install.trusted_uv(cache, options.uv)
            if not os.access(uv, os.X_OK):
                copy_verified(layout.blob_path(store, options.uv), options.uv, uv, 0o700)
            wheels = [dict(zip(("filename", "sha256"), w.split("=", 1), strict=True))
                      for w in options.wheels.split(",") if w]

            def build(path: str) -> None:
                uv_env = job_index_environment(options.index, os.environ, lock_text)
                if options.index_options:  # uv's per-index settings, no secret in them
                    uv_env[uvconfig.VARIABLE] = _verified_text(
                        store, options.index_options, "index settings")
                install.build_with_uv(
                    path, lock_text=lock_text, uv=uv, python=options.python, wheels=wheels,
                    wheel_dir=store, uv_env=uv_env)

        path, _ = install.materialize(cache, options.lock[:32], options.lock, build)
        lifecycle.collect_on_host(cache)
        env = process_environment(os.environ)  # the worker needs no index credential
        env["PYTHONNOUSERSITE"] = "1"
        # a job's directory (often the user's, on a shared filesystem) must not shadow the
        # code bundle: Python puts it first on sys.path for -m and -c unless told not to
        env["PYTHONSAFEPATH"] = "1"
        if options.code:
            try:
                env["PYTHONPATH"] = unpack_code(cache, store, options.code[:32], options.code)
            except HostError as error:
                raise HostError(f"code bundle sha256:{options.code} is missing or altered in "
                                f"{store}: {error}", kind="store") from None
        if options.link:
            link = livecode.held_link(cache, options.code[:32], options.link)
            env["PYTHONPATH"] = env[layout.CODE_LINK_VARIABLE] = link
    except (HostError, artifact.ArtifactError) as error:
        return _job_failed(options, store, str(error), getattr(error, "log", ""),
                           getattr(error, "kind", "materialize"))
    except OSError as error:  # the cache: unwritable, full, or not a directory
        failure = disk_error(error, error.filename or cache)
        return _job_failed(options, store, str(failure), "", failure.kind)
    except ValueError as error:
        return _job_failed(options, store, f"bad worker command arguments: {error}", "",
                           "arguments")
    python = layout.env_python(path)
    lease.keep_across_exec(path)
    os.execve(python, [python, *args], env)
    return 0  # pragma: no cover - execve does not return


def _job_failed(options: argparse.Namespace, store: str, message: str, log: str,
                kind: str) -> int:
    """Say why in a report the client reads from the store, then on stderr; exit status 2."""
    if options.report:
        args = options.args[1:] if options.args[:1] == ["--"] else options.args
        jobreport.write_failure(store, options.report, kind=kind, message=message, log=log,
                                args=args, environ=os.environ)
    sys.stderr.write(f"packsync: {message}\n{log[-4000:]}")
    return 2


def job_index_environment(indexes: list[str], environ: Any, lock_text: str = "") -> dict[str, str]:
    """uv's view of the named indexes: their URLs, and credentials only from the job itself.

    ``indexes`` are ``NAME=URL`` without userinfo. The job's ``UV_INDEX_<NAME>_USERNAME``
    and ``_PASSWORD`` pass through to uv (they are dropped from everything else it
    inherits), else the ``machine`` line of the index's host in the job's netrc
    (``$NETRC`` or ``~/.netrc``). uv reads no netrc itself, whose ``default`` entry it
    would send to every index, unless ``$PACKSYNC_NETRC_DEFAULT`` is true. A URL whose
    token the worker command holds as a placeholder (``{packsync-secret:corp-1}``) is
    read whole from the job's ``UV_INDEX_<NAME>_URL`` (packsync's variable, not uv's), and
    the tokens in it fill in the placeholders of ``lock_text``; a job that lacks it while
    the lock needs it is refused, naming the variable.
    """
    if not indexes:
        return {}
    env: dict[str, str] = {}
    entries: list[str] = []
    tokens: dict[str, str] = {}
    needed = set(placeholders.labels_in(lock_text))
    machines = _netrc_machines(environ)
    for entry in indexes:
        name, _, url = entry.partition("=")
        prefix = uvconfig.index_prefix(name)
        for suffix in ("USERNAME", "PASSWORD"):
            variable = f"{prefix}{suffix}"
            if variable in environ:
                env[variable] = environ[variable]
        found = machines.get(urllib.parse.urlsplit(url).hostname or "")
        if found is not None and not any(k.startswith(prefix) for k in env):
            login, _, secret = found
            env[f"{prefix}USERNAME"] = login or ""
            env[f"{prefix}PASSWORD"] = secret or ""
        labels = placeholders.labels_in(url)
        variable = f"{prefix}URL"
        live = str(environ.get(variable, ""))
        if not labels:
            entries.append(entry)
            continue
        if not live:
            if not needed & set(labels):
                continue  # the lock has nothing from it
            raise HostError(f"the index {name} ({url}) has an access token in its URL, which "
                            f"packsync does not hand to jobs: set {variable} to the index's "
                            "full URL in the job's environment", kind="credentials")
        values = placeholders.values_from(url, live)
        if values is None:
            raise HostError(f"{variable} is not a URL of the index {name}: it must read {url} "
                            "with the token in place of each placeholder", kind="credentials")
        tokens.update(values)
        entries.append(f"{name}={live}")
    if entries:
        env["UV_INDEX"] = " ".join(entries)
    if tokens:
        env[placeholders.VARIABLE] = json.dumps(tokens)
    if netrc_default_asked(str(environ.get("PACKSYNC_NETRC_DEFAULT", ""))):
        env["NETRC"] = _netrc_path(environ)  # uv reads it whole, as the job asked
    else:
        env["NETRC"] = os.devnull
    return env


def netrc_default_asked(value: str) -> bool:
    """``$PACKSYNC_NETRC_DEFAULT`` says yes."""
    return value.strip().lower() in ("1", "true", "yes", "on")


def _netrc_machines(environ: Any) -> dict[str, tuple[str, str | None, str]]:
    """The ``machine`` lines of the job's netrc, by host (never its ``default`` entry)."""
    import netrc

    try:
        hosts = netrc.netrc(_netrc_path(environ)).hosts
    except (OSError, netrc.NetrcParseError):
        return {}
    return {host: entry for host, entry in hosts.items() if host != "default"}


def _netrc_path(environ: Any) -> str:
    return os.path.expanduser(str(
        environ.get("NETRC") or os.path.join(environ.get("HOME") or "~", ".netrc")))


def _verified_text(store: str, sha256: str, what: str) -> str:
    """An object of the store read once, and used only if those bytes have its hash."""
    try:
        with open(layout.blob_path(store, sha256), "rb") as handle:
            data = handle.read()
    except OSError:
        data = b""
    if hashlib.sha256(data).hexdigest() != sha256:
        raise HostError(f"{what} sha256:{sha256} is missing or altered in {store}",
                        kind="store")
    return data.decode("utf-8")
