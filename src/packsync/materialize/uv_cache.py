"""The lock's index wheels installed from uv's cache, offline, when it holds all of them.

A lock names each wheel by URL and hash. ``uv pip sync`` of a ``pylock.toml`` does not
look such entries up in uv's index-keyed cache, so the wheels the client installed a
minute ago would be downloaded and extracted again. Asked of the same indexes by name,
exact version and the lock's wheel hashes (``--require-hashes``, ``--offline``), uv
finds them in its cache, and installs an archive only if its hash is one the lock lists
for that package: the files are the lock's wheels', written by uv as a sync writes them.

Only index wheels are asked for this way; sdists, local wheels and anything else the lock
holds are left to the sync that follows, which keeps what is installed already. When uv's
cache lacks a wheel, or anything else goes wrong, uv installs nothing useful and the
caller builds the environment from the lock's URLs as before.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from packsync.lock.lockfile import Lock
from packsync.uv_errors import scrubbed_tail
from packsync.uvtool import run_uv

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

logger = logging.getLogger(__name__)


def cached_requirements(lock_text: str) -> list[str]:
    """A hash-pinned requirement for each package of the lock that is installed from an
    index wheel: ``name==version ; marker --hash=sha256:…`` with the hashes of the lock's
    wheels of that package (uv picks among them as it does from the lock)."""
    packages: list[dict[str, Any]] = tomllib.loads(lock_text).get("packages", [])
    return [line for line in map(_requirement, packages) if line is not None]


def _requirement(package: dict[str, Any]) -> str | None:
    if any(key in package for key in ("vcs", "directory", "archive")):
        return None
    name, version = package.get("name"), package.get("version")
    hashes = [
        str(wheel.get("hashes", {}).get("sha256", ""))
        for wheel in package.get("wheels", [])
        if wheel.get("url") and "path" not in wheel
    ]
    if not name or not version or not hashes or not all(hashes):
        return None
    marker = package.get("marker")
    pinned = f"{name}=={version}" + (f" ; {marker}" if marker else "")
    return " ".join([pinned, *(f"--hash=sha256:{h}" for h in hashes)])


def install_cached(lock: Lock, python: Path, uv_env: Mapping[str, str]) -> int | None:
    """Install the lock's index wheels into the environment of ``python`` from uv's cache.

    How many packages were asked for (0 when the lock has no index wheel); None when uv
    could not serve them all (a wheel not in its cache, most often): the environment must
    then be made again.
    """
    requirements = cached_requirements(lock.text)
    if not requirements:
        return 0
    with tempfile.TemporaryDirectory(prefix="packsync-cached-") as tmp:
        listed = Path(tmp) / "requirements.txt"
        listed.write_text("\n".join(requirements) + "\n", encoding="utf-8")
        result = run_uv(
            [
                "pip", "install", "--quiet", "--offline", "--no-deps", "--no-build",
                "--require-hashes", "--python", str(python), "-r", str(listed),
            ],
            extra_env=uv_env,
        )
    if result.returncode != 0:
        logger.info("environment %s: the lock's wheels are not all in uv's cache, they are "
                    "downloaded", lock.env_id[:12])
        logger.debug("uv's cache could not serve the lock:\n%s",
                     scrubbed_tail(result.stdout, uv_env))
        return None
    return len(requirements)
