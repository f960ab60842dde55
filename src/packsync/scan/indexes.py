"""Where the client's packages come from: pip and uv configuration, read like they read it.

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
  kept too (``uv pip`` has no per-package index pins), last. Find-links: uv's, then pip's.
* Index strategy: uv's configured ``index-strategy``, else ``unsafe-best-match`` (what
  pip does across all its indexes, which is how a pip client got its packages).
"""

from __future__ import annotations

import configparser
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from packsync.model import IndexConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

if TYPE_CHECKING:
    from packsync.scan.credentials import Credentials

DEFAULT_INDEX = "https://pypi.org/simple"
DEFAULT_STRATEGY = "unsafe-best-match"
SOURCES_VARIABLE = "PACKSYNC_INDEX_SOURCES"
"""Non-secret description of the indexes, beside them in uv's environment, so that a
failure on a host can be explained (which index, credentials found or not, from where)."""

Role = Literal["default", "extra", "find-links"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Index:
    """One configured index or find-links location; ``url`` may carry credentials."""

    url: str
    role: Role
    origin: str
    name: str = ""
    explicit: bool = False

    def __repr__(self) -> str:
        return f"Index({self.display!r}, role={self.role!r}, origin={self.origin!r})"

    @property
    def display(self) -> str:
        """The URL as it may be shown or stored: no userinfo."""
        return redact_url(self.url)

    @property
    def plain_url(self) -> str:
        """The URL without any userinfo (the key pip and keyring look credentials up by)."""
        return strip_userinfo(self.url)


@dataclass(frozen=True, kw_only=True, slots=True)
class IndexSettings:
    """Index settings as configured, secrets included; never persisted, never shown."""

    indexes: tuple[Index, ...] = (Index(url=DEFAULT_INDEX, role="default", origin="default"),)
    index_strategy: str = DEFAULT_STRATEGY
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

    def credentials(self, index: Index) -> Credentials | None:
        """The credentials for ``index`` (URL, uv variables, netrc, keyring), looked up once."""
        from packsync.scan.credentials import find_credentials

        if index.url not in self._found:
            self._found[index.url] = find_credentials(index, self.environ)
        return self._found[index.url]

    def uv_environment(self) -> dict[str, str]:
        """The variables that give uv these indexes, credentials resolved into the URLs.

        Environment, not argv (argv is public) and not a file (files persist): the only
        place a secret travels.
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
        return env

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
            })
        return rows

    def _live_url(self, index: Index) -> str:
        found = self.credentials(index)
        if found is None or not _is_http(index.url):
            return index.url
        parts = urlsplit(index.url)
        host = parts.netloc.rsplit("@", 1)[-1]
        return urlunsplit(parts._replace(netloc=f"{found.userinfo()}@{host}"))


def _describe_origin(index: Index) -> str:
    return index.origin + (" (explicit)" if index.explicit else "")


def _is_http(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def redact_url(url: str) -> str:
    """``https://user:secret@host/x`` -> ``https://***@host/x``."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def strip_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


_USERINFO = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^\s/@]+@")


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with URL userinfo and each known secret replaced by ``***``."""
    text = _USERINFO.sub(r"\1***@", text)
    for secret in sorted({s for s in secrets if len(s) >= 3}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


# --------------------------------------------------------------------------- discovery


@dataclass(frozen=True, kw_only=True, slots=True)
class _UvLayer:
    """What uv's settings say, before merging with pip's."""

    default: Index | None = None
    indexes: tuple[Index, ...] = ()
    find_links: tuple[Index, ...] = ()
    strategy: str = ""


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


# --------------------------------------------------------------------------- uv


def uv_config_files(environ: Mapping[str, str], cwd: Path) -> list[Path]:
    """uv's configuration files, highest precedence first (project, user, system)."""
    if environ.get("UV_NO_CONFIG"):
        return []
    if environ.get("UV_CONFIG_FILE"):
        return [Path(environ["UV_CONFIG_FILE"])]
    files = []
    project = _project_config(cwd)
    if project is not None:
        files.append(project)
    home = Path(environ.get("HOME", str(Path.home())))
    user = Path(environ.get("XDG_CONFIG_HOME") or home / ".config") / "uv" / "uv.toml"
    if user.is_file():
        files.append(user)
    system_dirs = [d for d in environ.get("XDG_CONFIG_DIRS", "").split(":") if d] + ["/etc"]
    for directory in system_dirs:  # only the first system file found is used
        if (Path(directory) / "uv" / "uv.toml").is_file():
            files.append(Path(directory) / "uv" / "uv.toml")
            break
    return files


def _project_config(cwd: Path) -> Path | None:
    for directory in (cwd, *cwd.parents):
        if (directory / "uv.toml").is_file():
            return directory / "uv.toml"
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file() and "uv" in _load_toml(pyproject).get("tool", {}):
            return pyproject
    return None


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def _uv_tables(path: Path) -> Iterator[dict[str, Any]]:
    """The tables of one uv file that configure indexes: ``[pip]`` first (it wins for uv pip)."""
    data = _load_toml(path)
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get("uv", {})
    if isinstance(data.get("pip"), dict):
        yield data["pip"]
    yield data


def uv_settings(environ: Mapping[str, str], cwd: Path) -> _UvLayer:
    """uv's index settings: variables first, then files, lists concatenated in that order."""
    default: Index | None = None
    indexes: list[Index] = []
    links: list[Index] = []
    strategy = environ.get("UV_INDEX_STRATEGY", "")

    for var in ("UV_DEFAULT_INDEX", "UV_INDEX_URL"):
        if environ.get(var) and default is None:
            name, url = _split_named(environ[var])
            default = Index(url=url, role="default", origin=f"${var}", name=name)
    for entry in environ.get("UV_INDEX", "").split():
        name, url = _split_named(entry)
        indexes.append(Index(url=url, role="extra", origin="$UV_INDEX", name=name))
    for url in environ.get("UV_EXTRA_INDEX_URL", "").split():
        indexes.append(Index(url=url, role="extra", origin="$UV_EXTRA_INDEX_URL"))
    for url in environ.get("UV_FIND_LINKS", "").replace(",", " ").split():
        links.append(Index(url=url, role="find-links", origin="$UV_FIND_LINKS"))

    for path in uv_config_files(environ, cwd):
        origin = str(path)
        for table in _uv_tables(path):
            entries = table.get("index", [])
            for entry in entries if isinstance(entries, list) else []:
                if not isinstance(entry, dict) or not entry.get("url"):
                    continue
                index = Index(url=str(entry["url"]), role="extra", origin=origin,
                              name=str(entry.get("name", "")),
                              explicit=bool(entry.get("explicit", False)))
                if entry.get("format") == "flat":
                    links.append(_with_role(index, "find-links"))
                elif entry.get("default"):
                    default = default or _with_role(index, "default")
                else:
                    indexes.append(index)
            extra = table.get("extra-index-url", [])
            indexes += [Index(url=str(u), role="extra", origin=origin) for u in _as_list(extra)]
            links += [Index(url=str(u), role="find-links", origin=origin)
                      for u in _as_list(table.get("find-links", []))]
            if table.get("index-url") and default is None:
                default = Index(url=str(table["index-url"]), role="default", origin=origin)
            strategy = strategy or str(table.get("index-strategy", ""))
    return _UvLayer(default=default, indexes=tuple(indexes), find_links=tuple(links),
                    strategy=strategy)


def _with_role(index: Index, role: Role) -> Index:
    return Index(url=index.url, role=role, origin=index.origin, name=index.name,
                 explicit=index.explicit)


def _as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else [value] if value else []


def _split_named(entry: str) -> tuple[str, str]:
    """``name=https://…`` (uv's ``--index`` syntax) -> (name, url); a bare URL has no name."""
    name, sep, url = entry.partition("=")
    if sep and ":" not in name and "/" not in name:
        return name, url
    return "", entry


# --------------------------------------------------------------------------- pip


def pip_config_files(environ: Mapping[str, str], prefix: str = sys.prefix) -> list[Path]:
    """pip's configuration files in the order pip loads them (later wins)."""
    explicit = environ.get("PIP_CONFIG_FILE")
    if explicit == os.devnull:
        return []
    home = Path(environ.get("HOME", str(Path.home())))
    xdg_dirs = [d for d in environ.get("XDG_CONFIG_DIRS", "/etc/xdg").split(":") if d]
    config_home = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
    files = [Path(d) / "pip" / "pip.conf" for d in xdg_dirs] + [Path("/etc/pip.conf")]
    if not (explicit and Path(explicit).exists()):  # pip skips user files then
        files += [home / ".pip" / "pip.conf", config_home / "pip" / "pip.conf"]
    files.append(Path(prefix) / "pip.conf")
    if explicit:
        files.append(Path(explicit))
    return files


_PIP_KEYS = ("index-url", "extra-index-url", "find-links")


def pip_settings(
    environ: Mapping[str, str], prefix: str = sys.prefix
) -> dict[str, tuple[str, str]]:
    """pip's ``index-url``, ``extra-index-url``, ``find-links``: (value, origin), last wins."""
    values: dict[str, tuple[str, str]] = {}
    for path in pip_config_files(environ, prefix):
        for key, value in _read_pip_config(path).items():
            values[key] = (value, str(path))
    for key in _PIP_KEYS:
        var = "PIP_" + key.upper().replace("-", "_")
        if environ.get(var):
            values[key] = (environ[var], f"${var}")
    return values


def _read_pip_config(path: Path) -> dict[str, str]:
    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (OSError, configparser.Error, UnicodeDecodeError):
        return {}
    result: dict[str, str] = {}
    for section in ("global", "install"):
        if parser.has_section(section):
            for key in _PIP_KEYS:
                if parser.has_option(section, key):
                    result[key] = parser.get(section, key)
    return result
