"""Installed distributions on a search path, read the way Python would import them.

A direct directory walk rather than ``importlib.metadata``: it reads each
``METADATA`` header once and nothing else, so a scan costs about what a bare
metadata walk costs, and a broken distribution becomes a reported problem instead
of an exception.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from packaging.version import InvalidVersion, Version

from packsync.model import InstalledDist
from packsync.sources import (
    ArchiveSource,
    DirectorySource,
    EditableSource,
    IndexSource,
    Source,
    VcsSource,
)

_HEADERS = ("name", "version", "requires-dist")


@dataclass(frozen=True, kw_only=True, slots=True)
class ScanResult:
    """The distributions Python would import, and what was seen but left out (and why)."""

    dists: tuple[InstalledDist, ...]
    notes: tuple[str, ...]


def scan_dists(paths: Iterable[str]) -> tuple[InstalledDist, ...]:
    """The distributions importable from ``paths``, wherever their metadata sits."""
    return find_dists(paths, None).dists


def find_dists(paths: Iterable[str], site_dirs: Iterable[str] | None) -> ScanResult:
    """Every distribution importable from ``paths``; the first on the path wins.

    ``site_dirs`` are the directories installers write to. Legacy ``*.egg-info`` found
    elsewhere counts only when an ``*.egg-link`` points there (``setup.py develop``):
    a stray one in a working directory is not an install. ``None`` accepts it anywhere.
    """
    entries = [os.path.abspath(p or ".") for p in paths]
    sites = None if site_dirs is None else {os.path.abspath(d) for d in site_dirs}
    links = _egg_links(entries)
    found: dict[str, InstalledDist] = {}
    notes: list[str] = []
    for entry in entries:
        legacy_ok = sites is None or entry in sites or entry in links
        for dist in _dists_in(entry, links.get(entry), legacy_ok, notes):
            first = found.setdefault(dist.key, dist)
            if first is not dist:
                notes.append(
                    f"{dist.name} {dist.version} in {entry} is shadowed by {first.name} "
                    f"{first.version} in {first.location}, which is what Python imports"
                )
    return ScanResult(
        dists=tuple(sorted(found.values(), key=lambda d: d.key)), notes=tuple(notes)
    )


def _egg_links(entries: list[str]) -> dict[str, str]:
    """``setup.py develop`` installs: the directory each ``*.egg-link`` puts on the path,
    mapped to its project root."""
    links: dict[str, str] = {}
    for entry in entries:
        try:
            names = [n for n in os.listdir(entry) if n.endswith(".egg-link")]
        except OSError:
            continue
        for name in names:
            lines = _read_text(os.path.join(entry, name)).splitlines()
            if not lines or not lines[0].strip():
                continue
            target = os.path.abspath(lines[0].strip())
            relative = lines[1].strip() if len(lines) > 1 else "."
            links[target] = os.path.normpath(os.path.join(target, relative or "."))
    return links


def _dists_in(
    entry: str, egg_link_project: str | None, legacy_ok: bool, notes: list[str]
) -> Iterator[InstalledDist]:
    if entry.endswith(".egg"):
        egg = _read_egg(entry)
        if egg is not None:
            yield egg
        return
    try:
        names = sorted(os.listdir(entry))
    except OSError:
        return
    # dist-info before egg-info for the same name within one directory
    for name in names:
        if name.endswith(".dist-info"):
            dist = _read_dist_info(os.path.join(entry, name), entry)
            if _files_present(os.path.join(entry, name), entry):
                yield dist
            else:
                notes.append(
                    f"{dist.name} {dist.version} has metadata in {entry} but its files are "
                    "gone: skipped (reinstall or uninstall it)"
                )
    for name in names:
        if not name.endswith(".egg-info"):
            continue
        if not legacy_ok:
            notes.append(f"{os.path.join(entry, name)} is not an install (no installer put it "
                         "there): skipped")
            continue
        egg_info = _read_egg_info(os.path.join(entry, name), entry)
        if egg_info is None:
            continue
        if egg_link_project is not None:
            egg_info = replace(egg_info, source=EditableSource(
                path=egg_link_project, commit=git_commit(egg_link_project)
            ))
        yield egg_info


def _files_present(dist_info: str, location: str) -> bool:
    """One stat: does the first installed file RECORD lists still exist?"""
    try:
        with open(os.path.join(dist_info, "RECORD"), encoding="utf-8", errors="replace") as f:
            head = f.read(8192)  # uv sorts RECORD: the package's own lines come early
    except OSError:
        return True  # no RECORD: nothing to check against
    own = os.path.basename(dist_info) + "/"
    lines = head.splitlines()
    if len(head) == 8192:
        lines = lines[:-1]  # the last line may be cut off
    for line in lines:
        path = line.split(",", 1)[0]
        if path and not path.startswith((own, "../", "/")) and "__pycache__" not in path:
            return os.path.exists(os.path.join(location, path))
    return True


def _read_egg(path: str) -> InstalledDist | None:
    """An ``*.egg`` directory or zip file on the path (easy_install, ``setup.py install``)."""
    problems: list[str] = []
    if os.path.isdir(path):
        headers = _read_headers(os.path.join(path, "EGG-INFO", "PKG-INFO"), problems)
    else:
        try:
            with zipfile.ZipFile(path) as egg:
                raw = egg.read("EGG-INFO/PKG-INFO")
        except (OSError, KeyError, zipfile.BadZipFile):
            return None
        headers = _parse_headers(raw, problems)
    name, version = _name_and_version(headers, os.path.basename(path), problems)
    return InstalledDist(
        name=name,
        version=version,
        installer="egg",
        requires=tuple(headers.get("requires-dist", ())),
        location=path,
        problems=tuple(problems),
    )


def git_commit(path: str) -> str:
    """The commit checked out in the Git work tree holding ``path`` ("" if none)."""
    directory = Path(path)
    for candidate in (directory, *directory.parents):
        dot_git = candidate / ".git"
        if dot_git.is_file():  # a worktree or submodule: "gitdir: <path>"
            pointer = _read_text(str(dot_git)).strip()
            if not pointer.startswith("gitdir:"):
                return ""
            dot_git = (candidate / pointer.split(":", 1)[1].strip()).resolve()
        if dot_git.is_dir():
            return _resolve_head(dot_git)
    return ""


def _resolve_head(git_dir: Path) -> str:
    head = _read_text(str(git_dir / "HEAD")).strip()
    if not head.startswith("ref:"):
        return head
    ref = head.split(":", 1)[1].strip()
    common = git_dir
    commondir = _read_text(str(git_dir / "commondir")).strip()
    if commondir:
        common = (git_dir / commondir).resolve()
    for root in (git_dir, common):
        value = _read_text(str(root / ref)).strip()
        if value:
            return value
    for line in _read_text(str(common / "packed-refs")).splitlines():
        sha, _, name = line.partition(" ")
        if name.strip() == ref:
            return sha
    return ""


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
    requires = headers.get("requires-dist") or _egg_requires(os.path.join(path, "requires.txt"))
    return InstalledDist(
        name=name,
        version=version,
        source=IndexSource(),
        installer=_read_text(os.path.join(path, "INSTALLER")).strip(),
        requires=tuple(requires),
        location=location,
        problems=tuple(problems),
    )


def _egg_requires(path: str) -> list[str]:
    """``requires.txt`` lines as Requires-Dist strings (``[extra:marker]`` sections too)."""
    requires: list[str] = []
    marker = ""
    for raw in _read_text(path).splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            extra, _, condition = line[1:-1].partition(":")
            parts = [f"({condition})"] if condition else []
            parts += [f'extra == "{extra}"'] if extra else []
            marker = " and ".join(parts)
            continue
        requires.append(f"{line}; {marker}" if marker else line)
    return requires


def _read_headers(path: str, problems: list[str]) -> dict[str, list[str]]:
    """The core-metadata headers packsync needs, without the email parser's cost."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError:
        problems.append(f"no metadata file {os.path.basename(path)}")
        return {}
    return _parse_headers(raw, problems)


def _parse_headers(raw: bytes, problems: list[str]) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
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
            subdirectory=data.get("subdirectory", ""),
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
            return EditableSource(path=directory, commit=git_commit(directory))
        return DirectorySource(path=directory)
    problems.append("direct_url.json names no known install kind")
    return IndexSource()


def without_password(url: str) -> str:
    """Drop the secrets of a URL's userinfo: a snapshot never holds one.

    HTTP(S) loses the whole userinfo, since its username is as often a token
    (``https://<token>@``, ``https://<token>:x-oauth-basic@``); ssh keeps its user
    (``git@``) and loses only a password. The build reads them again on the client.
    """
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    userinfo, host = parts.netloc.rsplit("@", 1)
    user = userinfo.partition(":")[0]
    if parts.scheme.endswith(("http", "https")):
        user = ""
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
