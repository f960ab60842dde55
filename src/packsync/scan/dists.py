"""Installed distributions on a search path, read the way Python would import them.

A direct directory walk rather than ``importlib.metadata``: it reads each
``METADATA`` header once and nothing else, so a scan costs about what a bare
metadata walk costs, and a broken distribution becomes a reported problem instead
of an exception.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from packaging.version import InvalidVersion, Version

from packsync.model import (
    ArchiveSource,
    DirectorySource,
    EditableSource,
    IndexSource,
    InstalledDist,
    Source,
    VcsSource,
)

_HEADERS = ("name", "version", "requires-dist")


def scan_dists(paths: Iterable[str]) -> tuple[InstalledDist, ...]:
    """Every distribution importable from ``paths``; the first on the path wins."""
    found: dict[str, InstalledDist] = {}
    for entry in paths:
        for dist in _dists_in(entry):
            found.setdefault(dist.key, dist)
    return tuple(sorted(found.values(), key=lambda d: d.key))


def _dists_in(entry: str) -> Iterator[InstalledDist]:
    try:
        names = sorted(os.listdir(entry or "."))
    except OSError:
        return
    # dist-info before egg-info for the same name within one directory
    dist_infos = [n for n in names if n.endswith(".dist-info")]
    egg_infos = [n for n in names if n.endswith(".egg-info")]
    for name in dist_infos:
        yield _read_dist_info(os.path.join(entry, name), entry)
    for name in egg_infos:
        dist = _read_egg_info(os.path.join(entry, name), entry)
        if dist is not None:
            yield dist


def _read_dist_info(path: str, location: str) -> InstalledDist:
    problems: list[str] = []
    headers = _read_headers(os.path.join(path, "METADATA"), problems)
    name, version = _name_and_version(headers, os.path.basename(path), problems)
    installer = _read_text(os.path.join(path, "INSTALLER")).strip()
    source = _read_direct_url(os.path.join(path, "direct_url.json"), problems)
    return InstalledDist(
        name=name,
        version=version,
        source=source,
        installer=installer,
        requested=os.path.exists(os.path.join(path, "REQUESTED")),
        requires=tuple(headers.get("requires-dist", ())),
        location=location,
        problems=tuple(problems),
    )


def _read_egg_info(path: str, location: str) -> InstalledDist | None:
    problems: list[str] = []
    pkg_info = os.path.join(path, "PKG-INFO") if os.path.isdir(path) else path
    if not os.path.exists(pkg_info):
        return None
    headers = _read_headers(pkg_info, problems)
    name, version = _name_and_version(headers, os.path.basename(path), problems)
    return InstalledDist(
        name=name,
        version=version,
        source=IndexSource(),
        installer=_read_text(os.path.join(path, "INSTALLER")).strip(),
        location=location,
        problems=tuple(problems),
    )


def _read_headers(path: str, problems: list[str]) -> dict[str, list[str]]:
    """The core-metadata headers packsync needs, without the email parser's cost."""
    headers: dict[str, list[str]] = {}
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError:
        problems.append(f"no metadata file {os.path.basename(path)}")
        return headers
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        problems.append("metadata is not valid UTF-8")
        text = raw.decode("utf-8", errors="replace")
    for line in text.splitlines():
        if not line:
            break
        if line[0] in " \t":
            continue
        key, sep, value = line.partition(":")
        if sep and key.lower() in _HEADERS:
            headers.setdefault(key.lower(), []).append(value.strip())
    return headers


def _name_and_version(
    headers: dict[str, list[str]], dirname: str, problems: list[str]
) -> tuple[str, str]:
    stem = dirname.rsplit(".", 1)[0]
    guessed_name, _, guessed_version = stem.partition("-")
    name = (headers.get("name") or [guessed_name])[0]
    version = (headers.get("version") or [guessed_version.partition("-")[0]])[0]
    if "name" not in headers or "version" not in headers:
        problems.append("metadata lacks Name or Version; taken from the directory name")
    try:
        Version(version)
    except InvalidVersion:
        problems.append(f"version {version!r} is not a valid version")
    return name, version


def _read_direct_url(path: str, problems: list[str]) -> Source:
    text = _read_text(path)
    if not text:
        return IndexSource()
    try:
        data = json.loads(text)
        url = without_password(data["url"])
    except (ValueError, KeyError, TypeError):
        problems.append("direct_url.json is not valid PEP 610 JSON")
        return IndexSource()
    if "vcs_info" in data:
        info = data["vcs_info"]
        return VcsSource(
            vcs=info.get("vcs", "git"),
            url=url,
            commit=info.get("commit_id", ""),
            requested_revision=info.get("requested_revision", ""),
        )
    if "archive_info" in data:
        info = data["archive_info"]
        sha256 = info.get("hashes", {}).get("sha256", "")
        if not sha256 and info.get("hash", "").startswith("sha256="):
            sha256 = info["hash"].split("=", 1)[1]
        return ArchiveSource(url=url, sha256=sha256)
    if "dir_info" in data:
        directory = file_url_to_path(url)
        if data["dir_info"].get("editable"):
            return EditableSource(path=directory)
        return DirectorySource(path=directory)
    problems.append("direct_url.json names no known install kind")
    return IndexSource()


def without_password(url: str) -> str:
    """Drop a password from a URL's userinfo: a snapshot never holds a secret."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, has_password, _ = userinfo.partition(":")
    if not has_password and parts.scheme.endswith(("http", "https")):
        user = ""  # a lone name in an https URL is a token (ssh's ``git@`` is kept)
    return urlunsplit(parts._replace(netloc=f"{user}@{host}" if user else host))


def file_url_to_path(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "file":
        return url
    return str(Path(unquote(parts.path)))


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""
