"""What a worker's environment holds, told by the worker itself.

Runs inside each Dask worker (the client pickles this module by value, so the
worker needs only the standard library): every distribution Python would import,
first on ``sys.path`` wins, with its version; for packages installed from a local
wheel, the wheel's file name and whether every installed file still matches the
hash its ``RECORD`` lists; and the interpreter's version. ``WorkerReport`` is the
schema of that JSON; the client checks each report against it on receipt.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import socket
import sys
from typing import Final, Literal, TypedDict

REPORT_FORMAT: Final = 1
_SEPARATORS = re.compile(r"[-_.]+")


class LocalWheelReport(TypedDict):
    """A distribution installed from a local wheel file."""

    wheel: str  # the wheel's file name
    altered: list[str]  # installed files whose content differs from RECORD's hash


class WorkerReport(TypedDict):
    """What one worker's environment holds, as it travels back to the client (JSON)."""

    format: Literal[1]  # REPORT_FORMAT
    python: str
    executable: str
    prefix: str
    hostname: str
    versions: dict[str, str]  # canonical name -> version, as imports see them
    local: dict[str, LocalWheelReport]  # canonical name -> its local wheel


def canonical(name: str) -> str:
    return _SEPARATORS.sub("-", name).lower()


def environment_report() -> WorkerReport:
    """Names, versions, local-wheel checks and interpreter of this process's environment."""
    versions: dict[str, str] = {}
    local: dict[str, LocalWheelReport] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if not name:
            continue
        key = canonical(name)
        if key in versions:
            continue  # shadowed by an earlier sys.path entry: not what imports see
        versions[key] = dist.version
        wheel = _local_wheel(dist)
        if wheel:
            local[key] = {"wheel": wheel, "altered": _altered_files(dist)}
    return {
        "format": REPORT_FORMAT,
        "python": platform.python_version(),
        "executable": sys.executable,
        "prefix": sys.prefix,
        "hostname": socket.gethostname(),
        "versions": versions,
        "local": local,
    }


def report_json() -> str:
    """The report as JSON: it travels through Dask without any pickling on the client."""
    return json.dumps(environment_report())


def _local_wheel(dist: importlib.metadata.Distribution) -> str:
    try:
        text = dist.read_text("direct_url.json")
    except OSError:
        return ""
    if not text:
        return ""
    try:
        data = json.loads(text)
    except ValueError:
        return ""
    url = str(data.get("url", ""))
    if "archive_info" not in data or not url.startswith("file:") or not url.endswith(".whl"):
        return ""
    return url.rsplit("/", 1)[-1]


def _altered_files(dist: importlib.metadata.Distribution) -> list[str]:
    """Installed files whose content no longer matches the hash in ``RECORD``."""
    altered = []
    for entry in dist.files or ():
        if entry.hash is None or entry.hash.mode != "sha256":
            continue
        if entry.parts and entry.parts[0].endswith(".dist-info"):
            continue  # installers rewrite their own metadata (uv_cache.json): not the code
        path = entry.locate()
        try:
            with open(os.fspath(path), "rb") as handle:
                digest = hashlib.sha256(handle.read()).digest()
        except OSError:
            altered.append(str(entry))
            continue
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != entry.hash.value:
            altered.append(str(entry))
    return altered
