"""The conda side of a prefix: ``conda-meta/*.json`` records, reconciled with the pip side.

Plain JSON reading, no conda library: scanning works wherever packsync does. A Python
distribution whose metadata files a conda record lists, and which are still the ones on
disk, *is* that conda package and travels with conda; one that pip or uv installed on
top (replacing conda's files, or beside them) stays a pip package. Records that list no
files fall back to the name table of ``packsync.conda.names``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sysconfig
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from packsync.conda.channels import record_channel, redact_channel
from packsync.conda.model import CondaEnvironment, CondaPackage
from packsync.conda.names import pypi_name
from packsync.model import InstalledDist
from packsync.sources import CondaSource

logger = logging.getLogger(__name__)

PIP_INSTALLERS = frozenset({"pip", "uv"})
_META = re.compile(
    r"(?:^|/)(?:site|dist)-packages/(?P<dir>[^/]+)\.(?P<kind>dist-info|egg-info)"
    r"(?:/(?P<file>METADATA|PKG-INFO|INSTALLER))?$"
)
_SPEC_NAME = re.compile(r"^(?:[^:\s]+::)?(?P<name>[A-Za-z0-9_.\-]+)")
_HISTORY_SPECS = re.compile(r"^#\s*(?P<op>update|install|create|remove|neutered) specs:\s*(.*)$")


def is_conda_prefix(prefix: str | os.PathLike[str]) -> bool:
    """Whether ``prefix`` is a conda environment (conda, mamba, micromamba, pixi)."""
    return os.path.isdir(os.path.join(prefix, "conda-meta"))


@dataclass(frozen=True, kw_only=True, slots=True)
class _Owned:
    """A distribution's metadata a conda record installed, to compare with the disk."""

    package: str
    channel: str
    version: str  # from the dist-info directory name
    check: str  # relative path of the file to compare
    sha256: str  # its recorded hash ("" when the record has none)


@dataclass(frozen=True, kw_only=True, slots=True)
class CondaScan:
    """The conda environment and the distributions as reconciled with it."""

    environment: CondaEnvironment
    dists: tuple[InstalledDist, ...]
    notes: tuple[str, ...]


def scan_conda(prefix: str, dists: Iterable[InstalledDist]) -> CondaScan:
    """Read every record of ``prefix`` and tell conda-provided distributions from pip ones."""
    records = _read_records(prefix)
    requested = _history_specs(Path(prefix) / "conda-meta" / "history")
    owned: dict[str, _Owned] = {}
    packages: list[CondaPackage] = []
    channels: list[str] = []
    for record in records:
        channel = redact_channel(record_channel(record))
        if channel and channel not in channels:
            channels.append(channel)
        name = str(record["name"])
        claims = _claims(record, name, channel)
        for key, claim in claims.items():
            owned.setdefault(key, claim)
        specs = record.get("requested_specs") or (
            [record["requested_spec"]] if record.get("requested_spec") else []
        )
        packages.append(CondaPackage(
            name=name,
            version=str(record["version"]),
            build=str(record.get("build", "")),
            build_number=int(record.get("build_number") or 0),
            subdir=str(record.get("subdir", "")),
            channel=channel,
            noarch=_noarch(record.get("noarch")),
            requested_spec=str(specs[0]) if specs else requested.get(name, ""),
            depends=tuple(str(d) for d in record.get("depends", ())),
            python_dists=tuple(sorted(claims)),
        ))
    notes: list[str] = []
    reconciled = tuple(_reconcile(d, prefix, owned, packages, notes) for d in dists)
    provided: dict[str, list[str]] = {}
    for dist in reconciled:
        if isinstance(dist.source, CondaSource):
            provided.setdefault(dist.source.package, []).append(dist.key)
    packages = [replace(p, python_dists=tuple(sorted(provided.get(p.name, ())))) for p in packages]
    environment = CondaEnvironment(
        prefix=prefix,
        subdir=_subdir(packages),
        channels=tuple(channels),
        packages=tuple(sorted(packages, key=lambda p: p.name)),
    )
    return CondaScan(environment=environment, dists=reconciled, notes=tuple(notes))


def _read_records(prefix: str) -> list[dict[str, Any]]:
    meta = Path(prefix) / "conda-meta"
    records = []
    for path in sorted(meta.glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            logger.warning("skipping unreadable conda record %s: %s", path, error)
            continue
        if isinstance(record, dict) and record.get("name") and record.get("version"):
            records.append(record)
    return records


def _claims(record: Mapping[str, Any], name: str, channel: str) -> dict[str, _Owned]:
    """The distributions whose metadata this record installed, by canonical name."""
    hashes = {
        str(p.get("_path", "")): str(p.get("sha256") or "")
        for p in (record.get("paths_data") or {}).get("paths", ())
    }
    found: dict[str, dict[str, str]] = {}
    for path in record.get("files", ()):
        match = _META.search(str(path))
        if match is None:
            continue
        entry = found.setdefault(match["dir"], {"kind": match["kind"]})
        entry[match["file"] or "PKG-INFO"] = str(path)
    claims: dict[str, _Owned] = {}
    for directory, files in found.items():
        dist_name, _, rest = directory.partition("-")
        version = rest.split("-py", 1)[0] if files["kind"] == "egg-info" else rest
        check = files.get("INSTALLER") or files.get("METADATA") or files.get("PKG-INFO", "")
        claims[canonicalize_name(dist_name)] = _Owned(
            package=name, channel=channel, version=version, check=check,
            sha256=hashes.get(check, ""),
        )
    return claims


def _reconcile(
    dist: InstalledDist,
    prefix: str,
    owned: Mapping[str, _Owned],
    packages: list[CondaPackage],
    notes: list[str],
) -> InstalledDist:
    claim = owned.get(dist.key) or _by_name(dist, packages)
    if claim is None or not _inside(dist.location, prefix):
        return dist
    if _on_disk(claim, prefix, dist):
        return replace(dist, source=CondaSource(package=claim.package, channel=claim.channel))
    notes.append(
        f"{dist.name} {dist.version} was installed by {dist.installer or 'an installer'} over "
        f"conda's {claim.package} {claim.version}: it is synced as a pip package"
    )
    return dist


def _by_name(dist: InstalledDist, packages: list[CondaPackage]) -> _Owned | None:
    """The name-table fallback, for records that list no files."""
    if dist.installer in PIP_INSTALLERS:
        return None
    for package in packages:
        if pypi_name(package.name) == dist.key and package.version == dist.version:
            return _Owned(package=package.name, channel=package.channel,
                          version=package.version, check="", sha256="")
    return None


def _on_disk(claim: _Owned, prefix: str, dist: InstalledDist) -> bool:
    """Are conda's files of this distribution the ones installed now?"""
    if not claim.check:
        return True  # matched by name and version, with no file to compare
    path = os.path.join(prefix, claim.check)
    if not os.path.exists(path):
        return False
    if claim.sha256:
        try:
            with open(path, "rb") as handle:
                return hashlib.sha256(handle.read()).hexdigest() == claim.sha256
        except OSError:
            return False
    return dist.installer not in PIP_INSTALLERS and canonicalize_name(
        claim.version
    ) == canonicalize_name(dist.version)


def _inside(location: str, prefix: str) -> bool:
    try:
        return os.path.commonpath([os.path.realpath(location), os.path.realpath(prefix)]) == (
            os.path.realpath(prefix)
        )
    except ValueError:
        return False


def _noarch(value: object) -> str:
    if isinstance(value, dict):
        return str(value.get("type", ""))
    if value is True:
        return "generic"
    return str(value) if value else ""


def _subdir(packages: Iterable[CondaPackage]) -> str:
    for package in packages:
        if package.subdir and package.subdir != "noarch":
            return package.subdir
    return host_subdir()


def host_subdir() -> str:
    """This machine's conda platform name."""
    platform = sysconfig.get_platform()  # linux-x86_64, macosx-11.0-arm64, win-amd64
    os_name, machine = platform.split("-", 1)[0], platform.rsplit("-", 1)[-1]
    bits = {"x86_64": "64", "amd64": "64", "aarch64": "aarch64", "arm64": "arm64",
            "ppc64le": "ppc64le"}.get(machine, machine)
    os_part = {"macosx": "osx", "win": "win"}.get(os_name, os_name)
    return f"{os_part}-{bits}"


def _history_specs(path: Path) -> dict[str, str]:
    """Requested specs from ``conda-meta/history`` (conda and mamba write it)."""
    specs: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return specs
    for line in lines:
        match = _HISTORY_SPECS.match(line.strip())
        if match is None:
            continue
        try:
            listed = json.loads(match.group(2).replace("'", '"'))
        except ValueError:
            continue
        for spec in listed if isinstance(listed, list) else ():
            name_match = _SPEC_NAME.match(str(spec).strip())
            if name_match is None:
                continue
            name = name_match["name"].lower()
            if match["op"] == "neutered":
                continue  # specs conda rewrote itself, not the user's words
            if match["op"] == "remove":
                specs.pop(name, None)
            else:
                specs[name] = redact_channel(str(spec).strip())
    return specs
