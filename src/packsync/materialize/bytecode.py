"""Byte code for a new local environment, reused where it already exists on this machine.

Compiling every ``.py`` file is most of the cost of a first build. Two donors usually
hold that byte code already: the last ready environment of the same Python in the cache,
and the site-packages of the client that asks for the environment, which holds the very
same distributions. ``pyc_reuse`` gives a file a donor's ``.pyc`` (hard-linked: copying
thousands of small files costs about as much as compiling them) only where the import
system would accept it, and compiles the rest.

A client's site-packages serves only when it is of the environment's Python and holds
byte code at all (this machine may run with ``PYTHONDONTWRITEBYTECODE``); otherwise uv
compiles, as it always did.
"""

from __future__ import annotations

import json
import os
import site
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from packsync.errors import MaterializeError, tail
from packsync.hostside import install, layout, pyc_reuse
from packsync.hostside.supervise import supervised
from packsync.materialize.children import out_of_space


@dataclass(frozen=True, kw_only=True, slots=True)
class Donors:
    """Where a new environment's byte code may come from."""

    environment: Path | None = None  # a ready environment of the cache
    sites: tuple[Path, ...] = ()  # the client's site-packages directories

    def __bool__(self) -> bool:
        return self.environment is not None or bool(self.sites)

    def arguments(self) -> list[str]:
        """``pyc_reuse``'s arguments: the environment first (linked), then the sites."""
        found = [] if self.environment is None else [str(self.environment)]
        for directory in self.sites:
            found += ["--site", str(directory)]
        return found

    def describe(self) -> str:
        names = [] if self.environment is None else [f"environment {self.environment.name[:12]}"]
        return " and ".join([*names, *(["this Python's site-packages"] if self.sites else [])])


def donors(cache: Path, path: Path) -> Donors:
    """The donors of byte code for the environment being built at ``path``."""
    return Donors(environment=bytecode_donor(cache, path), sites=client_sites(path))


def bytecode_donor(cache: Path, path: Path) -> Path | None:
    """The ready environment of the same Python whose byte code the one at ``path`` reuses."""
    donor = pyc_reuse.bytecode_donor(str(cache / "envs"), str(path), layout.READY_MARKER,
                                     install.trusted_donor)
    return None if donor is None else Path(donor)


def client_sites(path: Path, candidates: Sequence[str] | None = None) -> tuple[Path, ...]:
    """The site-packages directories of this process's Python (or ``candidates``) that
    hold its byte code, if it is the Python of the environment at ``path``."""
    running = (sys.implementation.name.lower(), f"{sys.version_info[0]}.{sys.version_info[1]}")
    tag = sys.implementation.cache_tag
    if tag is None or pyc_reuse.python_of(str(path)) != running:
        return ()
    if candidates is None:
        candidates = [*site.getsitepackages()]
        if site.ENABLE_USER_SITE:
            candidates.append(site.getusersitepackages())
    found: list[Path] = []
    for candidate in candidates:
        directory = Path(os.path.realpath(candidate))
        if directory not in found and not directory.is_relative_to(path) \
                and _holds_byte_code(directory, tag):
            found.append(directory)
    return tuple(found)


def _holds_byte_code(directory: Path, tag: str) -> bool:
    """Whether any package right below ``directory`` was byte-compiled by this Python."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return False
    return any(
        entry.is_dir() and os.path.isfile(os.path.join(entry.path, "__pycache__",
                                                       f"__init__.{tag}.pyc"))
        for entry in entries
    )


def compile_reusing(path: Path, given: Donors, env_id: str, digest: str) -> dict[str, int]:
    """Byte-compile the environment at ``path`` with its own interpreter, reusing the
    donors' ``.pyc`` of identical files; how many files were reused and compiled."""
    script = pyc_reuse.__file__ or ""
    returncode, log = supervised(
        [layout.env_python(str(path)), "-I", script, *given.arguments()], None, None
    )
    full = out_of_space(log, path, digest, "byte-compiling")
    if full is not None:
        raise full
    try:
        if returncode != 0:
            raise ValueError(returncode)
        counts = json.loads(log.strip().splitlines()[-1])
        return {"reused": int(counts["reused"]), "compiled": int(counts["compiled"])}
    except (IndexError, ValueError, KeyError, TypeError):
        raise MaterializeError(
            f"byte-compiling environment {env_id[:12]} failed",
            digest=digest,
            log_tail=tail(log),
            hint="nothing of this environment will be used; the next launch builds it again",
        ) from None
