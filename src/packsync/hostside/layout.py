"""Where things live in a packsync cache: one definition for the client and every host.

This module runs on the client and, sent over SSH or read from a shared store, on
hosts that have nothing but Python: standard library only, no import from packsync
outside ``packsync.hostside``.

``<cache>/envs/<env_id>/`` holds one environment, used only once ``READY_MARKER`` is
in it (written last, with the record of its files: ``contents``);
``<cache>/envs/<env_id>.lock`` serialises its builders (``buildlock``) and
``<cache>/envs/<env_id>.lease`` is held by every process that runs from it (``lease``).
``<cache>/code/<code_id>/`` holds one version of the working-directory code.
``<cache>/bin/uv-<sha256[:16]>`` is the uv binary a host builds with. A store directory
keeps objects at ``<store>/sha256/<ab>/<sha256>``.
"""

from __future__ import annotations

import os

from packsync.hostside.contents import READY_MARKER as READY_MARKER
from packsync.hostside.contents import RECORD_DIR as RECORD_DIR
from packsync.hostside.contents import sha256_file as sha256_file

WHEELS_DIR = "wheels"
CODE_READY = ".packsync-ready"
CODE_MANIFEST = ".packsync-manifest.json"
EMPTY_CODE = "empty"  # the code version of a cluster without working-directory code
CODE_LINK_VARIABLE = "PACKSYNC_CODE_LINK"  # a process's live code link (livecode)
OBJECTS = "sha256"
STAGING_PREFIX = ".unpack-"


def cache_root(cache: str) -> str:
    return os.path.abspath(os.path.expanduser(cache))


def env_dir(cache: str, env_id: str) -> str:
    return os.path.join(cache, "envs", env_id)


def env_lock(cache: str, env_id: str) -> str:
    """The file whose lock a builder of the environment holds."""
    return env_dir(cache, env_id) + ".lock"


def env_python(path: str) -> str:
    return os.path.join(path, "bin", "python")


def code_dir(cache: str, code_id: str) -> str:
    return os.path.join(cache, "code", code_id)


def uv_path(cache: str, sha256: str) -> str:
    return os.path.join(cache, "bin", f"uv-{sha256[:16]}")


def is_digest(value: object) -> bool:
    """A SHA-256 in hex, as objects are named (and nothing that could escape a directory)."""
    return isinstance(value, str) and len(value) == 64 and all(
        c in "0123456789abcdef" for c in value)


def store_root(shared: object, cache: str) -> str:
    """The store a host reads objects from: the shared one it was given, else its own."""
    return str(shared or os.path.join(cache, "store"))


def blob_path(store: str, sha256: str) -> str:
    return os.path.join(store, OBJECTS, sha256[:2], sha256)


def is_ready(path: str) -> bool:
    """Whether the environment or code version at ``path`` is complete; a use is recorded."""
    try:
        os.utime(os.path.join(path, READY_MARKER))
        return True
    except FileNotFoundError:
        return False
