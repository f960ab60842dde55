"""Running uv: one place that finds the binary and gives it a clean environment."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Mapping, Sequence

from packsync.config import uv_path
from packsync.hostside.install import INHERITED_PREFIXES
from packsync.hostside.uvconfig import configured

logger = logging.getLogger(__name__)

# Inherited settings that would silently change what uv resolves or installs.
# Variables that can carry an index credential (URLs with userinfo, uv's per-index secrets).
_INDEX_VARIABLES = (
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_FIND_LINKS",
    "UV_INDEX",
    "UV_DEFAULT_INDEX",
    "UV_EXTRA_INDEX_URL",
    "UV_FIND_LINKS",
)


def without_index_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without the variables that configure indexes or carry their credentials.

    For processes that outlive an install (Dask workers): they never need an index, and
    a credential must not sit in their environment for as long as they run.
    """
    return {k: v for k, v in environ.items() if not k.startswith(_INDEX_VARIABLES)}


def uv_binary() -> str:
    """``PACKSYNC_UV`` when set (a specific uv build), else the one the ``uv`` package ships."""
    explicit = uv_path()
    if explicit:
        return explicit
    from uv import find_uv_bin

    return os.fsdecode(find_uv_bin())


def uv_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The parent's environment without index and interpreter settings, plus ``extra``.

    uv reads no configuration file and no netrc of its own: packsync has already read them
    on the client, so uv sees exactly the indexes and credentials it is handed, on any host.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(INHERITED_PREFIXES)}
    env["UV_NO_CONFIG"] = "1"
    env["NETRC"] = os.devnull
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env["UV_NO_PROGRESS"] = "1"
    env.update(extra or {})
    return env


def run_uv(
    args: Sequence[str], *, extra_env: Mapping[str, str] | None = None, cwd: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``uv ARGS``; stdout and stderr together, for the log tail of an error."""
    command = [uv_binary(), *args]
    logger.debug("running %s", " ".join(args[:2]))
    with configured(uv_environment(extra_env)) as env:  # per-index settings in a file
        return subprocess.run(
            command,
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        )
