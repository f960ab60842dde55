"""A wheel rebuilt from an installed distribution's files, as its ``RECORD`` lists them.

This is the faithful artifact when the source no longer matches what was installed
(a directory edited since) or cannot be had (a Git server down): the files that run
here, each checked against the hash ``RECORD`` gives it. Only pure-Python installs
are repacked; a file changed since install, or one installed outside site-packages
(other than an entry-point script, which the installer regenerates), makes the
repack unfaithful, and it is refused.
"""

from __future__ import annotations

import base64
import configparser
import csv
import hashlib
import io
import os
import re
import zipfile
from email.parser import HeaderParser
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

_EPOCH = (1980, 1, 1, 0, 0, 0)
_REGENERATED = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json", "RECORD.jws",
                          "RECORD.p7s"})


class NotFaithful(Exception):
    """The installed files are not a faithful wheel; the message says why."""


def installed_dist_info(location: Path, name: str, version: str) -> Path | None:
    """The ``*.dist-info`` directory of ``name`` ``version`` in ``location``, if there."""
    key = canonicalize_name(name)
    try:
        entries = os.listdir(location)
    except OSError:
        return None
    for entry in entries:
        stem, dot, suffix = entry.rpartition(".")
        if not dot or suffix != "dist-info":
            continue
        entry_name, _, entry_version = stem.rpartition("-")
        if canonicalize_name(entry_name) == key and _same_version(entry_version, version):
            return location / entry
    return None


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def record_key(dist_info: Path) -> str:
    """What identifies an installed distribution's content: its ``RECORD`` and ``WHEEL``."""
    digest = hashlib.sha256()
    for name in ("RECORD", "WHEEL"):
        try:
            digest.update((dist_info / name).read_bytes() + b"\0")
        except OSError as error:
            raise NotFaithful(f"{dist_info.name} has no {name}") from error
    return digest.hexdigest()


def wheel_identity(dist_info: Path) -> str:
    """The file name of the repacked wheel; ``NotFaithful`` unless the install is pure."""
    wheel = _read_wheel_file(dist_info)
    if wheel.get("root-is-purelib", [""])[0].strip().lower() != "true":
        raise NotFaithful("it is not a pure-Python install (Root-Is-Purelib is not true)")
    tags = wheel.get("tag") or ["py3-none-any"]
    return _filename(dist_info, tags)


def _filename(dist_info: Path, tags: list[str]) -> str:
    interpreters: list[str] = []
    for tag in tags:
        interpreter, _, rest = tag.strip().partition("-")
        if rest != "none-any":
            raise NotFaithful(f"it was installed from a platform-specific wheel ({tag})")
        interpreters += [i for i in interpreter.split(".") if i not in interpreters]
    metadata = _read_metadata(dist_info)
    name = re.sub(r"[-_.]+", "_", metadata["name"]).lower()
    version = str(Version(metadata["version"])).replace("-", "_")
    return f"{name}-{version}-{'.'.join(interpreters)}-none-any.whl"


def _read_wheel_file(dist_info: Path) -> dict[str, list[str]]:
    try:
        text = (dist_info / "WHEEL").read_text(encoding="utf-8")
    except OSError as error:
        raise NotFaithful(f"{dist_info.name} has no WHEEL file") from error
    headers = HeaderParser().parsestr(text)
    result: dict[str, list[str]] = {}
    for key, value in headers.items():
        result.setdefault(key.lower(), []).append(value)
    return result


def _read_metadata(dist_info: Path) -> dict[str, str]:
    try:
        headers = HeaderParser().parsestr((dist_info / "METADATA").read_text(encoding="utf-8"))
    except OSError as error:
        raise NotFaithful(f"{dist_info.name} has no METADATA") from error
    if not headers.get("Name") or not headers.get("Version"):
        raise NotFaithful(f"{dist_info.name}/METADATA lacks Name or Version")
    return {"name": str(headers["Name"]), "version": str(headers["Version"])}


def _record_rows(dist_info: Path) -> list[tuple[str, str]]:
    try:
        text = (dist_info / "RECORD").read_text(encoding="utf-8")
    except OSError as error:
        raise NotFaithful(f"{dist_info.name} has no RECORD") from error
    return [(row[0], row[1] if len(row) > 1 else "") for row in csv.reader(io.StringIO(text))
            if row]


def _entry_point_scripts(dist_info: Path) -> set[str]:
    parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read(dist_info / "entry_points.txt", encoding="utf-8")
    except configparser.Error:
        return set()
    names: set[str] = set()
    for section in ("console_scripts", "gui_scripts"):
        if parser.has_section(section):
            names.update(parser.options(section))
    return names


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def repack(dist_info: Path, out: Path) -> Path:
    """Write the wheel of the installed distribution into ``out``; deterministic bytes."""
    filename = wheel_identity(dist_info)
    site = dist_info.parent
    scripts = _entry_point_scripts(dist_info)
    files: dict[str, bytes] = {}
    problems: list[str] = []
    for relpath, recorded in _record_rows(dist_info):
        parts = Path(relpath).parts
        if ".." in parts:
            if os.path.basename(relpath) in scripts:
                continue  # an entry-point script: the installer writes it again
            problems.append(f"{relpath} is installed outside site-packages")
            continue
        if parts[0] == dist_info.name and parts[-1] in _REGENERATED:
            continue
        if "__pycache__" in parts or relpath.endswith((".pyc", ".pyo")):
            continue
        try:
            data = (site / relpath).read_bytes()
        except OSError:
            problems.append(f"{relpath} is missing")
            continue
        if recorded and recorded.startswith("sha256=") and _record_hash(data) != recorded:
            problems.append(f"{relpath} changed since it was installed")
            continue
        if not recorded and parts[0] != dist_info.name:
            problems.append(f"{relpath} has no hash in RECORD")
            continue
        files[relpath] = data
    if problems:
        shown = "; ".join(problems[:5]) + ("; ..." if len(problems) > 5 else "")
        raise NotFaithful(shown)
    info = dist_info.name
    files[f"{info}/WHEEL"] = _wheel_metadata(filename).encode()
    out.mkdir(parents=True, exist_ok=True)
    target = out / filename
    record_name = f"{info}/RECORD"
    ordered = sorted(n for n in files if not n.startswith(info + "/"))
    ordered += sorted(n for n in files if n.startswith(info + "/"))
    lines = [f"{name},{_record_hash(files[name])},{len(files[name])}" for name in ordered]
    lines.append(f"{record_name},,")
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in [*ordered, record_name]:
            data = files[name] if name != record_name else ("\n".join(lines) + "\n").encode()
            entry = zipfile.ZipInfo(name, date_time=_EPOCH)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, data)
    return target


def _wheel_metadata(filename: str) -> str:
    _, _, interpreters, abi, platform = filename[: -len(".whl")].split("-")
    tags = "".join(f"Tag: {i}-{abi}-{platform}\n" for i in interpreters.split("."))
    return f"Wheel-Version: 1.0\nGenerator: packsync (repack)\nRoot-Is-Purelib: true\n{tags}"


def _zip_dist_info(archive: zipfile.ZipFile) -> str:
    names = {n.split("/", 1)[0] for n in archive.namelist() if "/" in n}
    found = [n for n in names if n.endswith(".dist-info")]
    if len(found) != 1:
        raise NotFaithful("it has no single .dist-info directory")
    return found[0]


def wheel_filename_from_zip(wheel: Path) -> str:
    """A valid file name for a wheel whose file was renamed, read from its own metadata."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            info = _zip_dist_info(archive)
            metadata = HeaderParser().parsestr(archive.read(f"{info}/METADATA").decode())
            wheel_file = HeaderParser().parsestr(archive.read(f"{info}/WHEEL").decode())
    except (OSError, KeyError, zipfile.BadZipFile, UnicodeDecodeError) as error:
        raise NotFaithful(f"its metadata cannot be read ({error})") from error
    tags = wheel_file.get_all("Tag") or []
    if not tags or not metadata.get("Name") or not metadata.get("Version"):
        raise NotFaithful("its metadata lacks Name, Version or Tag")
    interpreters, abis, platforms = (sorted({t.split("-")[i] for t in tags}) for i in range(3))
    name = re.sub(r"[-_.]+", "_", str(metadata["Name"])).lower()
    version = str(Version(str(metadata["Version"]))).replace("-", "_")
    return f"{name}-{version}-{'.'.join(interpreters)}-{'.'.join(abis)}-{'.'.join(platforms)}.whl"


def record_mismatches(wheel: Path, dist_info: Path) -> list[str]:
    """Files the wheel's RECORD and the installed RECORD both hash, with different hashes."""
    installed = dict(_record_rows(dist_info))
    try:
        with zipfile.ZipFile(wheel) as archive:
            info = _zip_dist_info(archive)
            text = archive.read(f"{info}/RECORD").decode("utf-8")
    except (OSError, KeyError, zipfile.BadZipFile, UnicodeDecodeError, NotFaithful):
        return [f"{wheel.name} has no readable RECORD"]
    mismatches = []
    for row in csv.reader(io.StringIO(text)):
        if len(row) < 2 or not row[1] or ".data/" in row[0]:
            continue
        recorded = installed.get(row[0], "")
        if recorded and recorded != row[1]:
            mismatches.append(row[0])
    return mismatches
