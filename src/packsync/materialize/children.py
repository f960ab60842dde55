"""The processes a build starts (uv, the byte compiler), and what their failures say.

Each runs in a process group of its own that holds the builders' lock while it runs
(``hostside.supervise``): a ``kill -9`` of the builder cannot leave one writing into the
cache unnoticed, as the next builder ends it first (``hostside.buildlock``). A child that
ran out of space is said so, naming the place, rather than blamed on a package.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from packsync.errors import MaterializeError, tail
from packsync.hostside.supervise import supervised
from packsync.hostside.uvconfig import configured
from packsync.uvtool import uv_binary, uv_environment

_NO_SPACE = ("No space left on device", "os error 28", "Disk quota exceeded", "os error 122")
NO_SPACE_HINT = "free space there (or set PACKSYNC_CACHE_DIR); nothing half-built is used"


def run_uv(args: list[str], uv_env: Mapping[str, str]) -> tuple[int, str]:
    """``uv ARGS`` as a supervised child; its exit status and output (stderr included)."""
    with configured(uv_environment(uv_env)) as env:  # per-index settings in a file
        return supervised([uv_binary(), *args], env, None)


def out_of_space(output: str, path: Path, digest: str, what: str) -> MaterializeError | None:
    """The error of a child that ran out of space, if its output says it did."""
    if not any(sign in output for sign in _NO_SPACE):
        return None
    return MaterializeError(
        f"{what} ran out of space: no space left on the device of {path}",
        path=str(path), digest=digest, log_tail=tail(output, 5), hint=NO_SPACE_HINT,
    )
