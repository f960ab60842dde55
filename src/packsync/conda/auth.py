"""Conda channel credentials from the files the user's conda tools keep, read into memory.

A conda user logs in once, with the tool they use, and each tool keeps the credential
in a file of its own: rattler and pixi in ``$RATTLER_AUTH_FILE`` (else
``~/.rattler/credentials.json``), mamba and micromamba in
``~/.mamba/auth/authentication.json`` (both map a host, ``*.domain`` or ``host/path`` to
``{"BearerToken": ...}``, ``{"BasicHTTP": {"username", "password"}}`` or
``{"CondaToken": ...}``), conda in anaconda-client's token files (``conda token set``,
``anaconda login``: ``<quoted URL>.token`` in ``$BINSTAR_CONFIG_DIR/data`` or
``~/.config/binstar``) and in ``.condarc`` channel URLs that hold ``/t/<token>/``.

``channel_access`` turns them into what rattler is handed for the channels of one
environment: live URLs (a conda token in the path) and the HTTP headers of each channel,
in memory only. Nothing here writes a file; netrc and the keyring stay rattler's own.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote_plus, urlsplit

import yaml

from packsync.errors import PacksyncError

logger = logging.getLogger(__name__)

AuthKind = Literal["bearer", "basic", "conda-token"]
_RATTLER_KINDS: dict[str, AuthKind] = {
    "BearerToken": "bearer", "BasicHTTP": "basic", "BasicHttp": "basic",
    "CondaToken": "conda-token",
}
_IN_PATH = re.compile(r"/t/([^/]+)(?=/|$)")
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelCredential:
    """How to authenticate to the channels under ``key``, and where it was read from."""

    key: str  # a host, ``*.domain``, ``host/path`` or a URL prefix (``http://host/path``)
    kind: AuthKind
    secret: str = field(repr=False)  # the token, or the password
    username: str = ""
    origin: str  # the file, for messages (never its contents)

    def matches(self, url: str) -> int:
        """How specifically this credential names ``url`` (0: not at all)."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        path = parts.path.rstrip("/")
        key = self.key.rstrip("/")
        if "://" in key:
            return len(key) if url.rstrip("/").startswith(key) and (
                len(url.rstrip("/")) == len(key) or url[len(key)] == "/") else 0
        where, _, prefix = key.partition("/")
        where = where.lower()
        port = f"{host}:{parts.port}" if parts.port else host
        if where.startswith("*."):
            named = host == where[2:] or host.endswith(where[1:])
        else:
            named = where in (host, port)
        if not named or (prefix and not (path + "/").startswith(f"/{prefix}/")):
            return 0
        return len(key) + 1

    def headers(self) -> dict[str, str]:
        if self.kind == "bearer":
            return {"Authorization": f"Bearer {self.secret}"}
        if self.kind == "basic":
            pair = f"{self.username}:{self.secret}".encode()
            return {"Authorization": f"Basic {base64.b64encode(pair).decode()}"}
        return {}

    @property
    def secrets(self) -> set[str]:
        found = {self.secret}
        if self.kind == "basic":
            found.add(base64.b64encode(f"{self.username}:{self.secret}".encode()).decode())
        return {s for s in found if s}


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelAccess:
    """What rattler is handed for an environment's channels: memory only."""

    urls: Mapping[str, str] = field(default_factory=dict, repr=False)  # redacted -> live
    headers: tuple[tuple[str, str, Mapping[str, str]], ...] = field(default=(), repr=False)
    secrets: frozenset[str] = field(default=frozenset(), repr=False)
    origins: Mapping[str, str] = field(default_factory=dict)  # redacted channel -> file

    def headers_for(self, host: str, path: str) -> dict[str, str] | None:
        """The headers of a request to ``host`` for ``path``: those of the channel whose
        live URL holds it (so a redirect to another host or path gets none)."""
        for where, prefix, headers in self.headers:
            if host.lower() == where and (path.rstrip("/") + "/").startswith(prefix + "/"):
                return dict(headers)
        return None


def channel_access(
    channels: Mapping[str, str], environ: Mapping[str, str] | None = None
) -> ChannelAccess:
    """The live URL and headers of every channel (``channels``: redacted -> live URL).

    A live URL that already holds a credential (userinfo, ``/t/<token>/``) is kept; any
    other gets the most specific credential of the user's files, if one names it.
    """
    credentials = read_credentials(os.environ if environ is None else environ)
    urls: dict[str, str] = {}
    headers: list[tuple[str, str, Mapping[str, str]]] = []
    secrets: set[str] = set()
    origins: dict[str, str] = {}
    for redacted, live in channels.items():
        urls[redacted] = live
        parts = urlsplit(live)
        if not parts.hostname or "@" in parts.netloc or _IN_PATH.search(parts.path):
            continue
        found = best_credential(credentials, live)
        if found is None:
            continue
        origins[redacted] = found.origin
        secrets |= found.secrets
        if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
            logger.warning("the credential for conda channel %s (from %s) is sent over plain "
                           "HTTP, readable on the network", redacted, found.origin)
        if found.kind == "conda-token":
            live = with_conda_token(live, found.secret)
            urls[redacted] = live
        else:
            path = urlsplit(live).path.rstrip("/")
            headers.append((parts.hostname.lower(), path, found.headers()))
    return ChannelAccess(urls=urls, headers=tuple(headers), secrets=frozenset(secrets),
                         origins=origins)


def best_credential(
    credentials: tuple[tuple[ChannelCredential, ...], ...], url: str
) -> ChannelCredential | None:
    """The most specific credential for ``url`` of the first tool whose files name it
    (a later tool does not override an earlier one)."""
    for group in credentials:
        scored = [(c.matches(url), i, c) for i, c in enumerate(group)]
        best = max(scored, key=lambda s: (s[0], -s[1]), default=(0, 0, None))
        if best[0] and best[2] is not None:
            return best[2]
    return None


def with_conda_token(url: str, token: str) -> str:
    """``https://host/chan`` -> ``https://host/t/<token>/chan``, as conda and rattler do."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/t/{token}{parts.path}".rstrip("/")


def read_credentials(environ: Mapping[str, str]) -> tuple[tuple[ChannelCredential, ...], ...]:
    """Every credential of the user's files, one group per tool, in the order they count:
    rattler's, mamba's, anaconda-client's tokens, ``.condarc`` channel URLs."""
    home = Path(environ.get("HOME") or Path.home())
    rattler_file = environ.get("RATTLER_AUTH_FILE")
    rattler = Path(rattler_file) if rattler_file else home / ".rattler" / "credentials.json"
    return (
        tuple(_auth_file(rattler)),
        tuple(_auth_file(home / ".mamba" / "auth" / "authentication.json")),
        tuple(c for d in _binstar_directories(environ, home) for c in _binstar_tokens(d)),
        tuple(c for p in _condarc_files(environ, home) for c in _condarc_tokens(p)),
    )


def _auth_file(path: Path) -> list[ChannelCredential]:
    """rattler's and mamba's JSON format (one, by design)."""
    data = _json(path)
    found: list[ChannelCredential] = []
    for key, entry in (data.items() if isinstance(data, dict) else ()):
        if not isinstance(entry, dict) or len(entry) != 1:
            continue
        (name, value), = entry.items()
        kind = _RATTLER_KINDS.get(name)
        if kind == "basic" and isinstance(value, dict):
            found.append(ChannelCredential(
                key=str(key), kind=kind, secret=str(value.get("password", "")),
                username=str(value.get("username", "")), origin=str(path)))
        elif kind is not None and isinstance(value, str):
            found.append(ChannelCredential(key=str(key), kind=kind, secret=value,
                                           origin=str(path)))
    return found


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        logger.warning("conda credentials in %s cannot be read: %s", path, type(error).__name__)
        return None


def _binstar_directories(environ: Mapping[str, str], home: Path) -> list[Path]:
    """Where anaconda-client (and so ``conda token``) keeps its tokens, old and new."""
    if environ.get("BINSTAR_CONFIG_DIR"):
        return [Path(environ["BINSTAR_CONFIG_DIR"]) / "data"]
    config = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
    data = Path(environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    return [config / "binstar", data / "binstar",
            home / "Library" / "Application Support" / "binstar"]


def _binstar_tokens(directory: Path) -> list[ChannelCredential]:
    try:
        names = sorted(n for n in os.listdir(directory) if n.endswith(".token"))
    except OSError:
        return []
    found: list[ChannelCredential] = []
    for name in names:
        try:
            token = (directory / name).read_text(encoding="utf-8").strip()
        except OSError:
            continue
        url = unquote_plus(name[: -len(".token")]).rstrip("/")
        # the token of the API (api.anaconda.org) serves its channels (conda.anaconda.org)
        for key in dict.fromkeys((url, re.sub(r"([./])api([./]|$)", r"\1conda\2", url, count=1))):
            if token and "://" in key:
                found.append(ChannelCredential(key=key, kind="conda-token", secret=token,
                                               origin=str(directory / name)))
    return found


def _condarc_files(environ: Mapping[str, str], home: Path) -> list[Path]:
    config = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
    files = [home / ".condarc", config / "conda" / ".condarc", config / "conda" / "condarc"]
    if environ.get("CONDARC"):
        files.insert(0, Path(environ["CONDARC"]))
    return files


def _condarc_tokens(path: Path) -> list[ChannelCredential]:
    """``/t/<token>/`` in the channel URLs of a ``.condarc``: the token of those channels."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, yaml.YAMLError) as error:
        logger.warning("%s cannot be read: %s", path, type(error).__name__)
        return []
    found: list[ChannelCredential] = []
    for url in _condarc_urls(data):
        match = _IN_PATH.search(url)
        if match is None or "://" not in url:
            continue
        plain = (url[: match.start()] + url[match.end():]).rstrip("/")
        found.append(ChannelCredential(key=plain, kind="conda-token", secret=match.group(1),
                                       origin=str(path)))
    return found


def _condarc_urls(data: object) -> Iterator[str]:
    if not isinstance(data, dict):
        return
    for key in ("channel_alias", "channels", "default_channels", "custom_channels",
                "custom_multichannels"):
        yield from _strings(data.get(key))


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)


_DENIED = re.compile(r"\b(401|403)\b|unauthori[sz]ed|forbidden", re.IGNORECASE)
AUTH_FILES_HINT = (
    "log in to it with your conda tool (an entry for its host in "
    "~/.mamba/auth/authentication.json or $RATTLER_AUTH_FILE: "
    '{"HOST": {"BasicHTTP": {"username": ..., "password": ...}}}, {"BearerToken": ...} or '
    '{"CondaToken": ...}; `conda token set`; or a netrc entry); packsync reads them on '
    "this machine and never writes them anywhere"
)


def refused_channels(message: str, access: ChannelAccess) -> list[str]:
    """The channels (redacted) a failure message says refused this machine's credentials
    (or their absence): a 401 or 403 for a URL of theirs."""
    if not _DENIED.search(message):
        return []
    refused = []
    for redacted, live in access.urls.items():
        parts = urlsplit(live)
        where = parts.netloc.rpartition("@")[2]
        path = _IN_PATH.sub("", parts.path).rstrip("/")
        if where and f"{where}{path}" in _IN_PATH.sub("", message):
            refused.append(redacted)
    return refused or ([next(iter(access.urls))] if len(access.urls) == 1 else [])


def masked(message: str, access: ChannelAccess) -> str:
    """``message`` without any secret of the channels (their URLs', the files')."""
    from packsync.conda.channels import channel_secrets
    from packsync.redact import redact_text

    return redact_text(message, channel_secrets(access.urls.values()) | access.secrets)


def refusal(error: type[PacksyncError], message: str, access: ChannelAccess, *,
            action: str, **fields: str) -> PacksyncError | None:
    """The error that names the channels which refused ``action``, and the fix; None when
    no channel refused (``message`` is already masked)."""
    refused = refused_channels(message, access)
    if not refused:
        return None
    read = [f"{c} (credentials from {access.origins[c]})" for c in refused if c in access.origins]
    return error(
        f"{action}: the conda channel {', '.join(refused)} refused this machine "
        f"(HTTP 401/403): {message}",
        **fields,
        hint=("the credentials found were refused: " + "; ".join(read) + "; renew them, or "
              if read else "it needs credentials and none were found for it: ")
        + AUTH_FILES_HINT,
    )
