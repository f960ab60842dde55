"""Credentials for an index, found where pip and uv look, in the order uv applies them.

1. userinfo in the configured URL (a username alone is a token, or a username whose
   password is looked up below, as pip does);
2. ``$UV_INDEX_<NAME>_USERNAME`` / ``_PASSWORD`` for a named uv index (uv 0.13 lets a
   URL's own userinfo win over them, so they come second);
3. netrc (``$NETRC`` or ``~/.netrc``), by host: a ``machine`` line only. Its ``default``
   entry would go to every index without one, PyPI included, so it is sent to none unless
   ``packsync.netrc-default`` is true (pip's and uv's own behaviour);
4. keyring, when the ``keyring`` package is importable here: the index URL, then its
   host; with the URL's username when there is one, else asking for any credential.

Only the *source* is ever shown. ``Credentials`` has no readable repr and nothing in
packsync writes one to a file: they live in memory until handed to uv's environment.
"""

from __future__ import annotations

import logging
import netrc
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from packsync.hostside.uvconfig import index_prefix
from packsync.scan.index_config import Index

logger = logging.getLogger(__name__)

TOKEN_USERNAME = "__token__"


@dataclass(frozen=True, kw_only=True, slots=True)
class Credentials:
    """A username and password (or a token), and where they were found."""

    username: str = field(repr=False)
    password: str = field(repr=False)
    source: str

    def __repr__(self) -> str:
        return f"Credentials(source={self.source!r})"

    def userinfo(self) -> str:
        """Percent-encoded ``user:password`` (``user`` alone for a bare token)."""
        user = quote(self.username, safe="")
        return f"{user}:{quote(self.password, safe='')}" if self.password else user

    def secrets(self) -> tuple[str, ...]:
        """The values that must never appear anywhere, raw and percent-encoded."""
        values = [self.password] if self.password else [self.username]
        return tuple({v for s in values for v in (s, quote(s, safe=""))})




def netrc_path(environ: Mapping[str, str]) -> Path:
    home = environ.get("HOME") or str(Path.home())
    return Path(environ.get("NETRC") or os.path.join(home, ".netrc"))


def find_credentials(index: Index, environ: Mapping[str, str]) -> Credentials | None:
    """The credentials uv would send to ``index``, or ``None``."""
    parts = urlsplit(index.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    username = unquote(parts.username or "")
    password = unquote(parts.password or "")
    if username and password:
        return Credentials(username=username, password=password, source="URL")
    found = (
        _from_uv_environment(index, environ, username)
        or _from_netrc(parts.hostname, environ, username)
        or _from_keyring(index.plain_url, parts.netloc.rsplit("@", 1)[-1], username)
    )
    if found is not None:
        return found
    if username:  # a token as the URL's username, sent as is
        return Credentials(username=username, password="", source="URL")
    return None


def _from_uv_environment(
    index: Index, environ: Mapping[str, str], username: str
) -> Credentials | None:
    if not index.name:
        return None
    prefix = index_prefix(index.name)
    user = environ.get(prefix + "USERNAME", "") or username
    secret = environ.get(prefix + "PASSWORD", "")
    if not (secret or environ.get(prefix + "USERNAME")):
        return None
    return Credentials(username=user, password=secret,
                       source=f"${prefix}USERNAME/${prefix}PASSWORD")


def _from_netrc(host: str, environ: Mapping[str, str], username: str) -> Credentials | None:
    path = netrc_path(environ)
    if not path.is_file():
        return None
    try:
        entries = netrc.netrc(str(path)).hosts
    except (OSError, netrc.NetrcParseError) as error:
        logger.warning("cannot read %s: %s", path, error.__class__.__name__)
        return None
    entry = entries.get(host)
    if entry is None:
        return _netrc_default(entries.get("default"), host, path, username)
    login, _, secret = entry
    if username and login and login != username:
        return None  # uv ignores a netrc entry for another user
    if not secret:
        return None
    return Credentials(username=login or username, password=secret, source=f"netrc ({path})")


def _netrc_default(entry: tuple[str, str, str] | None, host: str, path: Path,
                   username: str) -> Credentials | None:
    """The netrc ``default`` entry, for a host with no ``machine`` line: only when the
    user asked for it, since it would reach every index, public ones included."""
    if entry is None:
        return None
    from packsync import config

    if not config.netrc_default():
        logger.info("%s has no `machine %s` line; its `default` entry is not sent there "
                    "(packsync.netrc-default is false)", path, host)
        return None
    login, _, secret = entry
    if not secret or (username and login and login != username):
        return None
    return Credentials(username=login or username, password=secret,
                       source=f"netrc default entry ({path})")


def _from_keyring(url: str, netloc: str, username: str) -> Credentials | None:
    try:
        import keyring
        import keyring.errors
    except ImportError:
        return None
    for service in (url, netloc):
        try:
            if username:
                secret = keyring.get_password(service, username)
                if secret:
                    return Credentials(username=username, password=secret, source="keyring")
                continue
            credential = keyring.get_credential(service, None)
        except Exception as error:  # a broken keyring backend must not stop a launch
            logger.debug("keyring lookup failed: %s", error.__class__.__name__)
            return None
        if credential is not None and credential.password:
            return Credentials(username=credential.username or TOKEN_USERNAME,
                               password=credential.password, source="keyring")
    return None
