"""Where the client's packages come from: pip and uv configuration, read like they read it.

``discover()`` returns the live settings (URLs may carry credentials) for handing to
uv through its environment at the moment of use; ``IndexSettings.redacted()`` is the
only form that is ever stored or shown.
"""

from __future__ import annotations

import configparser
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from packsync.model import IndexConfig

DEFAULT_INDEX = "https://pypi.org/simple"


@dataclass(frozen=True, kw_only=True, slots=True)
class IndexSettings:
    """Index settings as configured, secrets included; never persisted, never shown."""

    index_url: str = DEFAULT_INDEX
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    origins: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"IndexSettings({self.redacted().to_dict()!r})"

    def redacted(self) -> IndexConfig:
        return IndexConfig(
            index_url=redact_url(self.index_url),
            extra_index_urls=tuple(redact_url(u) for u in self.extra_index_urls),
            find_links=tuple(redact_url(u) for u in self.find_links),
            origins={redact_url(k): v for k, v in self.origins.items()},
        )

    def uv_environment(self) -> dict[str, str]:
        """The variables that give uv these indexes (environment, not argv: argv is public)."""
        env = {"UV_INDEX_URL": self.index_url, "UV_INDEX_STRATEGY": "unsafe-best-match"}
        if self.extra_index_urls:
            env["UV_EXTRA_INDEX_URL"] = " ".join(self.extra_index_urls)
        if self.find_links:
            env["UV_FIND_LINKS"] = ",".join(self.find_links)
        return env


def redact_url(url: str) -> str:
    """``https://user:secret@host/x`` -> ``https://***@host/x``."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def pip_config_files(environ: Mapping[str, str], prefix: str = sys.prefix) -> list[Path]:
    """pip's configuration files in the order pip loads them (later wins)."""
    explicit = environ.get("PIP_CONFIG_FILE")
    if explicit == os.devnull:
        return []
    home = Path(environ.get("HOME", str(Path.home())))
    xdg_dirs = environ.get("XDG_CONFIG_DIRS", "/etc/xdg").split(":")
    config_home = Path(environ.get("XDG_CONFIG_HOME", str(home / ".config")))
    files = [Path(d) / "pip" / "pip.conf" for d in xdg_dirs] + [Path("/etc/pip.conf")]
    files += [home / ".pip" / "pip.conf", config_home / "pip" / "pip.conf"]
    files.append(Path(prefix) / "pip.conf")
    if explicit:
        files.append(Path(explicit))
    return files


def discover(environ: Mapping[str, str] | None = None, prefix: str = sys.prefix) -> IndexSettings:
    """The index settings in effect for the client, and where each came from."""
    env = os.environ if environ is None else environ
    values: dict[str, tuple[str, str]] = {}
    for path in pip_config_files(env, prefix):
        for key, value in _read_pip_config(path).items():
            values[key] = (value, str(path))
    for key in ("index-url", "extra-index-url", "find-links"):
        var = "PIP_" + key.upper().replace("-", "_")
        if env.get(var):
            values[key] = (env[var], f"${var}")

    origins: dict[str, str] = {}
    index_url, origin = values.get("index-url", (DEFAULT_INDEX, "default"))
    for var in ("UV_INDEX_URL", "UV_DEFAULT_INDEX"):
        if env.get(var):
            index_url, origin = env[var], f"${var}"
    origins[index_url] = origin

    extras: list[str] = []
    if "extra-index-url" in values:
        value, origin = values["extra-index-url"]
        extras += _add(value.split(), origin, origins)
    for var in ("UV_EXTRA_INDEX_URL", "UV_INDEX"):
        urls = [u.split("=", 1)[1] if "=" in u.split("://")[0] else u
                for u in env.get(var, "").split()]
        extras += _add(urls, f"${var}", origins)

    links: list[str] = []
    if "find-links" in values:
        value, origin = values["find-links"]
        links += _add(value.split(), origin, origins)
    links += _add(env.get("UV_FIND_LINKS", "").replace(",", " ").split(), "$UV_FIND_LINKS", origins)

    return IndexSettings(
        index_url=index_url,
        extra_index_urls=tuple(dict.fromkeys(extras)),
        find_links=tuple(dict.fromkeys(links)),
        origins=origins,
    )


def _add(urls: list[str], origin: str, origins: dict[str, str]) -> list[str]:
    for url in urls:
        origins.setdefault(url, origin)
    return urls


def _read_pip_config(path: Path) -> dict[str, str]:
    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (OSError, configparser.Error):
        return {}
    result: dict[str, str] = {}
    for section in ("global", "install"):
        if parser.has_section(section):
            for key in ("index-url", "extra-index-url", "find-links"):
                if parser.has_option(section, key):
                    result[key] = parser.get(section, key)
    return result
