"""The lock's index wheels that the client got from uv, installed again from uv's cache.

A lock names each wheel by URL and hash. ``uv pip sync`` of a ``pylock.toml`` does not
look such entries up in uv's index-keyed cache, so the wheels the client installed a
minute ago would be downloaded and extracted again. Asked of the same indexes by name,
exact version and the lock's wheel hashes (``--require-hashes``, ``--offline``), uv
finds them in its cache, and installs an archive only if its hash is one the lock lists
for that package: the files are the lock's wheels', written by uv as a sync writes them.

Only the index wheels of packages that uv installed, at the lock's version, in the
environment of this process (the client's) are asked for: those are the wheels uv's cache
most likely holds (a ``pip`` or ``setuptools`` that ``python -m venv`` seeded is not
there). Everything else (other wheels, sdists, local wheels) is left to the sync that
follows, which keeps what is installed already. When uv's cache lacks a wheel, or
anything else goes wrong, the caller builds the environment from the lock's URLs as before.
"""

from __future__ import annotations

import importlib.metadata
import logging
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from packsync.lock.lockfile import Lock
from packsync.materialize.children import run_uv
from packsync.uv_errors import scrubbed_tail

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

logger = logging.getLogger(__name__)


def installed_by_uv(path: list[str] | None = None) -> dict[str, str]:
    """Canonical name -> version of each distribution this process imports (or ``path``
    holds) that uv installed; the first of a name on the path, as imports find it."""
    seen: set[str] = set()
    found: dict[str, str] = {}
    found_on = importlib.metadata.distributions(path=sys.path if path is None else path)
    for dist in found_on:
        name = canonicalize_name(dist.metadata["Name"] or "")
        if not name or name in seen:
            continue
        seen.add(name)
        if (dist.read_text("INSTALLER") or "").strip() == "uv":
            found[name] = dist.version
    return found


def cached_requirements(lock_text: str, installed: Mapping[str, str]) -> list[str]:
    """A hash-pinned requirement for each package of the lock that is installed from an
    index wheel and that ``installed`` holds at the same version: ``name==version ; marker
    --hash=sha256:…`` with the hashes of the lock's wheels of that package (uv picks among
    them as it does from the lock)."""
    packages: list[dict[str, Any]] = tomllib.loads(lock_text).get("packages", [])
    lines = (_requirement(package, installed) for package in packages)
    return [line for line in lines if line is not None]


def _requirement(package: dict[str, Any], installed: Mapping[str, str]) -> str | None:
    if any(key in package for key in ("vcs", "directory", "archive")):
        return None
    name, version = str(package.get("name", "")), str(package.get("version", ""))
    hashes = [
        str(wheel.get("hashes", {}).get("sha256", ""))
        for wheel in package.get("wheels", [])
        if wheel.get("url") and "path" not in wheel
    ]
    have = installed.get(canonicalize_name(name)) if name else None
    if not version or not hashes or not all(hashes) or not _same(have, version):
        return None
    marker = package.get("marker")
    pinned = f"{name}=={version}" + (f" ; {marker}" if marker else "")
    return " ".join([pinned, *(f"--hash=sha256:{h}" for h in hashes)])


def _same(installed: str | None, locked: str) -> bool:
    if installed is None:
        return False
    try:
        return Version(installed) == Version(locked)
    except InvalidVersion:
        return installed == locked


def install_cached(lock: Lock, python: Path, uv_env: Mapping[str, str]) -> int | None:
    """Install the lock's index wheels that this process's environment got from uv into
    the environment of ``python``, from uv's cache.

    How many packages were asked for (0: none to ask for); None when uv could not serve
    them all (a wheel not in its cache, most often): the environment must then be made
    again.
    """
    requirements = cached_requirements(lock.text, installed_by_uv())
    if not requirements:
        return 0
    with tempfile.TemporaryDirectory(prefix="packsync-cached-") as tmp:
        listed = Path(tmp) / "requirements.txt"
        listed.write_text("\n".join(requirements) + "\n", encoding="utf-8")
        returncode, output = run_uv(
            [
                "pip", "install", "--quiet", "--offline", "--no-deps", "--no-build",
                "--require-hashes", "--python", str(python), "-r", str(listed),
            ],
            uv_env,
        )
    if returncode != 0:
        logger.info("environment %s: the lock's wheels are not all in uv's cache, they are "
                    "downloaded", lock.env_id[:12])
        logger.debug("uv's cache could not serve the lock:\n%s",
                     scrubbed_tail(output, uv_env))
        return None
    return len(requirements)
