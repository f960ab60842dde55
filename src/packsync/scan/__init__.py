"""The only reader of the user's environment: ``scan()`` turns it into a ``Snapshot``.

Its modules are imported by the call, not by the package: ``import packsync`` imports this
package (``packsync.scan`` names the function) and has to stay cheap.
"""

from __future__ import annotations

import os
import platform
import site
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from packsync.model import Interpreter, Snapshot

__all__ = ["scan", "current_interpreter"]


def current_interpreter() -> Interpreter:
    """The running interpreter, with the base executable a venv was made from."""
    from packsync.model import Interpreter

    libc_name, libc_version = platform.libc_ver()
    libc = ""
    if libc_name == "glibc" and libc_version:
        libc = "manylinux_" + libc_version.replace(".", "_")
    base = getattr(sys, "_base_executable", "") or sys.executable
    return Interpreter(
        implementation=sys.implementation.name,
        version=platform.python_version(),
        platform=sysconfig.get_platform(),
        libc=libc,
        executable=os.path.realpath(base),
    )


def site_dirs() -> list[str]:
    """Where installers put distributions for this interpreter (user site included)."""
    dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    dirs += [sysconfig.get_path("purelib"), sysconfig.get_path("platlib")]
    return dirs


def scan(path: Sequence[str] | None = None) -> Snapshot:
    """A snapshot of the environment importable from ``path`` (default ``sys.path``)."""
    from packaging.markers import default_environment

    from packsync.conda.scan import is_conda_prefix, scan_conda
    from packsync.model import Snapshot
    from packsync.scan.dists import find_dists
    from packsync.scan.indexes import discover
    from packsync.scan.project_locks import project_locks
    from packsync.scan.workdir import code_paths, stdlib_paths
    from packsync.sources import DirectorySource, EditableSource

    search_path = list(sys.path if path is None else path)
    result = find_dists(search_path, site_dirs())
    dists, notes = result.dists, result.notes
    conda = None
    if is_conda_prefix(sys.prefix):
        found = scan_conda(sys.prefix, dists)
        dists, notes, conda = found.dists, notes + found.notes, found.environment
    locks, lock_notes = project_locks(Path.cwd(), prefix=sys.prefix, environ=os.environ)
    local_projects = [
        d.source.path for d in dists if isinstance(d.source, (EditableSource, DirectorySource))
    ]
    return Snapshot(
        interpreter=current_interpreter(),
        environment={k: str(v) for k, v in default_environment().items()},
        prefix=sys.prefix,
        dists=dists,
        code_paths=code_paths(search_path, prefixes=stdlib_paths(), exclude=local_projects),
        indexes=discover().redacted(),
        notes=notes + lock_notes,
        conda=conda,
        project_locks=locks,
    )
