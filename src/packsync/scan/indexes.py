"""Where the client's packages come from: the index settings in effect, uv's and pip's merged.

``discover()`` returns the live settings (URLs may carry credentials) for handing to
uv through its environment at the moment of use; ``IndexSettings.redacted()`` is the
only form that is ever stored, and ``Index.display`` the only form that is shown.

Merge rule. uv ignores pip's configuration, but the client may have installed with
pip, so both are read and nothing configured is dropped:

* uv settings follow uv: ``$UV_*`` variables beat configuration files; files are the
  project's (``uv.toml`` or ``pyproject.toml`` with ``[tool.uv]``, from the working
  directory upward), then the user's, then the system's; ``$UV_CONFIG_FILE`` replaces
  them all and ``$UV_NO_CONFIG`` disables them. Scalars: the first layer wins; lists
  (``index``, ``extra-index-url``, ``find-links``) are concatenated in that order.
* pip settings follow pip: global, user and site files, then ``$PIP_CONFIG_FILE``,
  then ``$PIP_*`` variables; the last value of each key wins.
* The default index is uv's when uv configures one, else pip's ``index-url``, else
  PyPI. A pip ``index-url`` displaced by uv's default is kept as an extra index.
* Extra indexes, in priority order: uv's ``index`` entries, uv's ``extra-index-url``,
  pip's ``extra-index-url``, a displaced pip ``index-url``. ``explicit`` uv indexes are
  kept too, last; the packages ``[tool.uv.sources]`` pins to a named index are resolved
  from that index alone (``IndexSettings.only``). Find-links: uv's, then pip's.
* Index strategy: uv's configured ``index-strategy``, else ``unsafe-best-match`` (what
  pip does across all its indexes, which is how a pip client got its packages).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from packsync.errors import ScanError
from packsync.hostside import placeholders, uvconfig
from packsync.model import IndexConfig
from packsync.redact import redact_url, written_url_tokens
from packsync.scan.index_config import Index, IndexPin, pip_settings, uv_settings, with_role

if TYPE_CHECKING:
    from packsync.scan.credentials import Credentials

DEFAULT_INDEX = "https://pypi.org/simple"
DEFAULT_STRATEGY = "unsafe-best-match"
SOURCES_VARIABLE = "PACKSYNC_INDEX_SOURCES"
"""Non-secret description of the indexes, beside them in uv's environment, so that a
failure on a host can be explained (which index, credentials found or not, from where)."""

@dataclass(frozen=True, kw_only=True, slots=True)
class IndexSettings:
    """Index settings as configured, secrets included; never persisted, never shown."""

    indexes: tuple[Index, ...] = (Index(url=DEFAULT_INDEX, role="default", origin="default"),)
    index_strategy: str = DEFAULT_STRATEGY
    pins: tuple[IndexPin, ...] = ()  # packages that come from one named index only
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    _found: dict[str, Credentials | None] = field(
        default_factory=dict, repr=False, compare=False
    )

    def __repr__(self) -> str:
        return f"IndexSettings({self.redacted().to_dict()!r})"

    @property
    def default(self) -> Index:
        return next(i for i in self.indexes if i.role == "default")

    @property
    def index_url(self) -> str:
        return self.default.url

    @property
    def extra_index_urls(self) -> tuple[str, ...]:
        return tuple(i.url for i in self.indexes if i.role == "extra")

    @property
    def find_links(self) -> tuple[str, ...]:
        return tuple(i.url for i in self.indexes if i.role == "find-links")

    @property
    def origins(self) -> dict[str, str]:
        return {i.url: i.origin for i in self.indexes}

    def redacted(self) -> IndexConfig:
        return IndexConfig(
            index_url=redact_url(self.index_url),
            extra_index_urls=tuple(redact_url(u) for u in self.extra_index_urls),
            find_links=tuple(redact_url(u) for u in self.find_links),
            origins={i.display: _describe_origin(i) for i in self.indexes},
        )

    def only(self, name: str) -> IndexSettings | None:
        """These settings with the index named ``name`` as the only one (for the packages
        pinned to it), or None if no index has that name."""
        index = next((i for i in self.indexes if i.name == name and i.role != "find-links"),
                     None)
        if index is None:
            return None
        return replace(self, indexes=(with_role(index, "default"),), pins=())

    def credentials(self, index: Index) -> Credentials | None:
        """The credentials for ``index`` (URL, uv variables, netrc, keyring), looked up once;
        none for an index uv must never authenticate to (``authenticate = "never"``)."""
        from packsync.scan.credentials import find_credentials

        if index.options.authenticate == "never":
            return None
        if index.url not in self._found:
            self._found[index.url] = find_credentials(index, self.environ)
        return self._found[index.url]

    def check_credentials(self) -> None:
        """Refuse, before uv runs, an index that must always be authenticated to
        (``authenticate = "always"``) when no credentials for it are found here: uv would
        fail on it only in the middle of a resolve or an install."""
        from packsync.hostside.uvconfig import index_prefix

        lacking = [i for i in self.indexes if i.options.authenticate == "always"
                   and _is_http(i.url) and self.credentials(i) is None]
        if not lacking:
            return
        index = lacking[0]
        host = urlsplit(index.plain_url).hostname or index.display
        named = (f", {index_prefix(index.name)}USERNAME/_PASSWORD" if index.name else "")
        raise ScanError(
            f"the index {index.name or index.display} ({index.display}, configured in "
            f"{index.origin}) says authenticate = \"always\", and no credentials for it "
            "were found (URL, uv's variables, netrc, keyring)"
            + (f"; nor for {', '.join(i.display for i in lacking[1:])}"
               if lacking[1:] else ""),
            path=index.origin,
            hint=f"give credentials for {host}: a ~/.netrc line `machine {host} login USER "
                 f"password SECRET`, the keyring{named}, or user:secret@ in the URL; "
                 "or drop authenticate = \"always\" if the index is public",
        )

    def index_options(self) -> list[dict[str, object]]:
        """uv's per-index settings, when an index has some: each index (a find-links
        location only with settings of its own) with its URL as a lock may hold it
        (``masked_url``), its uv name and format, and its settings. No secret in it."""
        if not any(i.options for i in self.indexes):
            return []
        return [{"url": self.masked_url(i),
                 **({"name": i.name} if i.name else {}),
                 "format": "flat" if i.role == "find-links" else "simple",
                 **i.options.to_uv()}
                for i in self.indexes if i.role != "find-links" or i.options]

    def uv_environment(self) -> dict[str, str]:
        """The variables that give uv these indexes, credentials resolved into the URLs,
        and their per-index settings (``hostside.uvconfig`` writes those for uv).

        Environment, not argv (argv is public): where secrets travel. The one exception, a
        token in the path of an index with settings, is in ``hostside.uvconfig``'s
        owner-only file while uv runs. An index that must be authenticated to and has no
        credentials is refused by a resolve before uv runs (``check_credentials``), not
        here: a launch whose lock and environment are cached asks no index.
        """
        live = {i.url: self._live_url(i) for i in self.indexes}
        env = {
            "UV_DEFAULT_INDEX": live[self.index_url],
            "UV_INDEX_STRATEGY": self.index_strategy,
            SOURCES_VARIABLE: json.dumps(self.describe()),
        }
        extras = [live[u] for u in self.extra_index_urls]
        if extras:
            env["UV_INDEX"] = " ".join(extras)
        if self.find_links:
            env["UV_FIND_LINKS"] = ",".join(live[u] for u in self.find_links)
        tokens = self.lock_tokens()
        if tokens:
            env[placeholders.VARIABLE] = json.dumps(tokens)
        options = self.index_options()
        if options:
            env[uvconfig.VARIABLE] = json.dumps(options)
        return env

    def lock_tokens(self) -> dict[str, str]:
        """label -> value of each token in the indexes' URLs (a path segment shaped like an
        access token, a query value: ``redact.written_url_tokens``), for which a lock holds
        ``{packsync-secret:<label>}``. The label names the index (its uv name, else its
        host) and numbers its tokens: ``corp-1``. Memory and uv's environment only."""
        values: dict[str, str] = {}
        taken: set[str] = set()
        for index in self.indexes:
            tokens = [t for t in written_url_tokens(index.url) if t not in values.values()]
            if not tokens:
                continue
            base = label = _label(index)
            number = 2
            while label in taken:
                label, number = f"{base}-{number}", number + 1
            taken.add(label)
            values.update({f"{label}-{n}": token for n, token in enumerate(tokens, 1)})
        return values

    def masked_url(self, index: Index) -> str:
        """``index``'s URL as a lock may hold it: no userinfo, its tokens as placeholders."""
        return placeholders.mask(index.plain_url, self.lock_tokens())

    def describe(self) -> list[dict[str, str]]:
        """Each index as shown to users: redacted URL, origin, and where credentials came from."""
        rows = []
        for index in self.indexes:
            found = self.credentials(index)
            rows.append({
                "url": index.display,
                "role": index.role,
                "name": index.name,
                "origin": _describe_origin(index),
                "credentials": found.source if found else "",
                "settings": index.options.describe(),
            })
        return rows

    def _live_url(self, index: Index) -> str:
        if index.options.authenticate == "never":
            return index.plain_url  # uv sends nothing to it: nothing to send
        found = self.credentials(index)
        if found is None or not _is_http(index.url):
            return index.url
        parts = urlsplit(index.url)
        host = parts.netloc.rsplit("@", 1)[-1]
        return urlunsplit(parts._replace(netloc=f"{found.userinfo()}@{host}"))


def _label(index: Index) -> str:
    """What a placeholder calls ``index``: its uv name, else its host (``dl-cloudsmith-io``)."""
    name = index.name or urlsplit(index.plain_url).hostname or ""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "index"


def _describe_origin(index: Index) -> str:
    return index.origin + (" (explicit)" if index.explicit else "")


def _is_http(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def discover(
    environ: Mapping[str, str] | None = None,
    prefix: str = sys.prefix,
    cwd: str | os.PathLike[str] | None = None,
) -> IndexSettings:
    """The index settings in effect for the client, and where each came from."""
    env = dict(os.environ if environ is None else environ)
    uv = uv_settings(env, Path(cwd) if cwd is not None else Path.cwd())
    pip = pip_settings(env, prefix)

    indexes: list[Index] = []
    pip_default = pip.get("index-url")
    if uv.default is not None:
        indexes.append(uv.default)
    elif pip_default is not None:
        indexes.append(Index(url=pip_default[0], role="default", origin=pip_default[1]))
    else:
        indexes.append(Index(url=DEFAULT_INDEX, role="default", origin="default"))
    implicit = [i for i in uv.indexes if not i.explicit]
    indexes += implicit
    if "extra-index-url" in pip:
        value, origin = pip["extra-index-url"]
        indexes += [Index(url=u, role="extra", origin=origin) for u in value.split()]
    if uv.default is not None and pip_default is not None:
        indexes.append(Index(url=pip_default[0], role="extra", origin=pip_default[1]))
    indexes += [i for i in uv.indexes if i.explicit]
    indexes += uv.find_links
    if "find-links" in pip:
        value, origin = pip["find-links"]
        indexes += [Index(url=u, role="find-links", origin=origin) for u in value.split()]
    return IndexSettings(
        indexes=_unique(indexes),
        index_strategy=uv.strategy or DEFAULT_STRATEGY,
        pins=uv.pins,
        environ=env,
    )


def _unique(indexes: list[Index]) -> tuple[Index, ...]:
    """First occurrence of each URL wins (it has the highest priority); the default stays."""
    seen: set[str] = set()
    result = []
    for index in indexes:
        key = index.plain_url.rstrip("/")
        if key in seen:
            continue
        seen.add(key)
        result.append(index)
    return tuple(result)
