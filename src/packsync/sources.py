"""Where an installed distribution came from, which decides how it reaches the cluster.

An index release is pinned, local code is built or uploaded, a conda package travels
with conda. Each source kind serialises to a mapping tagged by its ``kind`` constant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from packsync import serial
from packsync.serial import Serialisable


@dataclass(frozen=True, kw_only=True, slots=True)
class IndexSource(Serialisable):
    """Installed from a package index (no PEP 610 ``direct_url.json``)."""

    kind: Literal["index"] = field(default="index", init=False, repr=False)

    @property
    def is_local_code(self) -> bool:
        return False


@dataclass(frozen=True, kw_only=True, slots=True)
class EditableSource(Serialisable):
    """An editable install of a project directory on this machine.

    ``commit`` is the checked-out commit when the directory is a Git checkout
    (``pip install -e git+…``); what travels is still the directory as it is on disk.
    """

    kind: Literal["editable"] = field(default="editable", init=False, repr=False)
    path: str
    commit: str = ""

    @property
    def is_local_code(self) -> bool:
        return True


@dataclass(frozen=True, kw_only=True, slots=True)
class DirectorySource(Serialisable):
    """A non-editable install from a project directory on this machine."""

    kind: Literal["directory"] = field(default="directory", init=False, repr=False)
    path: str

    @property
    def is_local_code(self) -> bool:
        return True


@dataclass(frozen=True, kw_only=True, slots=True)
class ArchiveSource(Serialisable):
    """Installed from a wheel or sdist file (or URL) rather than an index."""

    kind: Literal["archive"] = field(default="archive", init=False, repr=False)
    url: str
    sha256: str = ""

    @property
    def is_local_code(self) -> bool:
        return True


@dataclass(frozen=True, kw_only=True, slots=True)
class VcsSource(Serialisable):
    """Installed from a version-control URL; built on the client, never on a host."""

    kind: Literal["vcs"] = field(default="vcs", init=False, repr=False)
    vcs: str
    url: str
    commit: str = ""
    requested_revision: str = ""
    subdirectory: str = ""  # where the project sits inside the repository

    @property
    def is_local_code(self) -> bool:
        return True


@dataclass(frozen=True, kw_only=True, slots=True)
class CondaSource(Serialisable):
    """Installed by a conda package (its files are that package's): it travels with conda."""

    kind: Literal["conda"] = field(default="conda", init=False, repr=False)
    package: str  # the conda package's name, e.g. ``dask-core`` for ``dask``
    channel: str = ""  # redacted

    @property
    def is_local_code(self) -> bool:
        return False


Source = (
    IndexSource | EditableSource | DirectorySource | ArchiveSource | VcsSource | CondaSource
)
SOURCE_KINDS = tuple(serial.tags(Source))
