"""What uv's and pip's own configuration says about indexes, read the way each reads it.

Variables and configuration files, each value with where it came from; merging uv's and
pip's into the settings in effect is ``packsync.scan.indexes``'s job.
"""

from __future__ import annotations

import configparser
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from packsync.hostside.uvconfig import split_named
from packsync.redact import redact_url, strip_userinfo

logger = logging.getLogger(__name__)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

Role = Literal["default", "extra", "find-links"]
AUTHENTICATE = ("auto", "always", "never")


@dataclass(frozen=True, kw_only=True, slots=True)
class IndexOptions:
    """uv's settings of one ``[[index]]`` beyond where it is and what role it plays: when
    uv authenticates to it, which HTTP errors send uv on to the next index, and the cache
    headers it applies. Empty values are uv's defaults. None is a secret."""

    authenticate: str = ""  # "auto" | "always" | "never"
    ignore_error_codes: tuple[int, ...] | None = None  # None: uv's default (PyTorch: 403)
    cache_control_api: str = ""
    cache_control_files: str = ""

    def __bool__(self) -> bool:
        return self != IndexOptions()

    def describe(self) -> str:
        """The settings as shown: ``authenticate=always, ignore-error-codes=403``."""
        return ", ".join(
            f"{key}={','.join(map(str, value)) if isinstance(value, list) else value}"
            if not isinstance(value, dict) else
            f"{key}=" + ",".join(f"{k}:{v}" for k, v in value.items())
            for key, value in self.to_uv().items())

    def to_uv(self) -> dict[str, Any]:
        """The settings as uv's ``[[index]]`` keys, only those set."""
        found: dict[str, Any] = {}
        if self.authenticate:
            found["authenticate"] = self.authenticate
        if self.ignore_error_codes is not None:
            found["ignore-error-codes"] = list(self.ignore_error_codes)
        cache = {k: v for k, v in (("api", self.cache_control_api),
                                   ("files", self.cache_control_files)) if v}
        if cache:
            found["cache-control"] = cache
        return found


@dataclass(frozen=True, kw_only=True, slots=True)
class Index:
    """One configured index or find-links location; ``url`` may carry credentials."""

    url: str
    role: Role
    origin: str
    name: str = ""
    explicit: bool = False
    options: IndexOptions = field(default_factory=IndexOptions)

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
class IndexPin:
    """``[tool.uv.sources]``: ``package`` comes from the index named ``index`` only (where
    ``marker`` holds, if it has one)."""

    package: str  # canonical
    index: str
    marker: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class UvSettings:
    """What uv's settings say, before merging with pip's."""

    default: Index | None = None
    indexes: tuple[Index, ...] = ()
    find_links: tuple[Index, ...] = ()
    strategy: str = ""
    pins: tuple[IndexPin, ...] = ()


# --------------------------------------------------------------------------- uv


def uv_config_files(environ: Mapping[str, str], cwd: Path) -> list[Path]:
    """uv's configuration files, highest precedence first (project, user, system).
    ``UV_CONFIG_FILE`` is read even under ``UV_NO_CONFIG``, as uv does."""
    if environ.get("UV_CONFIG_FILE"):
        return [Path(environ["UV_CONFIG_FILE"])]
    if environ.get("UV_NO_CONFIG"):
        return []
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


def uv_settings(environ: Mapping[str, str], cwd: Path) -> UvSettings:
    """uv's index settings: variables first, then files, lists concatenated in that order."""
    default: Index | None = None
    indexes: list[Index] = []
    links: list[Index] = []
    strategy = environ.get("UV_INDEX_STRATEGY", "")

    for var in ("UV_DEFAULT_INDEX", "UV_INDEX_URL"):
        if environ.get(var) and default is None:
            name, url = split_named(environ[var])
            default = Index(url=url, role="default", origin=f"${var}", name=name)
    for entry in environ.get("UV_INDEX", "").split():
        name, url = split_named(entry)
        indexes.append(Index(url=url, role="extra", origin="$UV_INDEX", name=name))
    for url in environ.get("UV_EXTRA_INDEX_URL", "").split():
        indexes.append(Index(url=url, role="extra", origin="$UV_EXTRA_INDEX_URL"))
    for url in environ.get("UV_FIND_LINKS", "").replace(",", " ").split():
        links.append(Index(url=url, role="find-links", origin="$UV_FIND_LINKS"))

    pins: list[IndexPin] = []
    for path in uv_config_files(environ, cwd):
        origin = str(path)
        if path.name == "pyproject.toml" and not pins:  # the project's own sources
            pins = _index_pins(_load_toml(path).get("tool", {}).get("uv", {}))
        for table in _uv_tables(path):
            entries = table.get("index", [])
            for entry in entries if isinstance(entries, list) else []:
                if not isinstance(entry, dict) or not entry.get("url"):
                    continue
                index = Index(url=str(entry["url"]), role="extra", origin=origin,
                              name=str(entry.get("name", "")),
                              explicit=bool(entry.get("explicit", False)),
                              options=index_options(entry, origin))
                if entry.get("format") == "flat":
                    links.append(with_role(index, "find-links"))
                elif entry.get("default"):
                    default = default or with_role(index, "default")
                else:
                    indexes.append(index)
            extra = table.get("extra-index-url", [])
            indexes += [Index(url=str(u), role="extra", origin=origin) for u in _as_list(extra)]
            links += [Index(url=str(u), role="find-links", origin=origin)
                      for u in _as_list(table.get("find-links", []))]
            if table.get("index-url") and default is None:
                default = Index(url=str(table["index-url"]), role="default", origin=origin)
            strategy = strategy or str(table.get("index-strategy", ""))
    return UvSettings(default=default, indexes=tuple(indexes), find_links=tuple(links),
                      strategy=strategy, pins=tuple(pins))


def _index_pins(uv: Mapping[str, Any]) -> list[IndexPin]:
    """``[tool.uv.sources]`` entries that name an index (``torch = { index = "pytorch" }``,
    or a list of them with markers); Git, path and URL sources are local code, built."""
    from packaging.utils import canonicalize_name

    pins = []
    sources = uv.get("sources", {})
    for package, value in (sources.items() if isinstance(sources, dict) else ()):
        for entry in value if isinstance(value, list) else [value]:
            if isinstance(entry, dict) and isinstance(entry.get("index"), str):
                pins.append(IndexPin(package=canonicalize_name(str(package)),
                                     index=entry["index"], marker=str(entry.get("marker", ""))))
    return pins


def index_options(entry: Mapping[str, Any], origin: str) -> IndexOptions:
    """The per-index settings of one ``[[index]]`` table; a value uv would not accept is
    left out, with a warning naming the file (uv itself refuses that file)."""
    authenticate = entry.get("authenticate", "")
    if authenticate not in ("", *AUTHENTICATE):
        logger.warning("%s: authenticate = %r is not one of %s; ignored", origin,
                       authenticate, ", ".join(AUTHENTICATE))
        authenticate = ""
    codes = entry.get("ignore-error-codes")
    if codes is not None and not (isinstance(codes, list) and all(
            isinstance(c, int) and not isinstance(c, bool) and 100 <= c <= 599 for c in codes)):
        logger.warning("%s: ignore-error-codes = %r is not a list of HTTP status codes; "
                       "ignored", origin, codes)
        codes = None
    cache = entry.get("cache-control")
    if cache is not None and not (isinstance(cache, dict) and set(cache) <= {"api", "files"}
                                  and all(isinstance(v, str) for v in cache.values())):
        logger.warning("%s: cache-control = %r is not a table of api and files headers; "
                       "ignored", origin, cache)
        cache = None
    cache = cache or {}
    return IndexOptions(
        authenticate=str(authenticate),
        ignore_error_codes=None if codes is None else tuple(codes),
        cache_control_api=str(cache.get("api") or ""),
        cache_control_files=str(cache.get("files") or ""),
    )


def with_role(index: Index, role: Role) -> Index:
    return replace(index, role=role)


def _as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else [value] if value else []


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
