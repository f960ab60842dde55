"""Where an installed distribution came from, which decides how it reaches the cluster.

An index release is pinned, local code is built or uploaded, a conda package travels
with conda. Each source kind serialises to a dict tagged by ``kind``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True, kw_only=True, slots=True)
class IndexSource:
    """Installed from a package index (no PEP 610 ``direct_url.json``)."""

    kind: ClassVar[str] = "index"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind}

    @property
    def is_local_code(self) -> bool:
        return False


@dataclass(frozen=True, kw_only=True, slots=True)
class EditableSource:
    """An editable install of a project directory on this machine.

    ``commit`` is the checked-out commit when the directory is a Git checkout
    (``pip install -e git+…``); what travels is still the directory as it is on disk.
    """

    kind: ClassVar[str] = "editable"
    path: str
    commit: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = {"kind": self.kind, "path": self.path}
        if self.commit:
            data["commit"] = self.commit
        return data

    @property
    def is_local_code(self) -> bool:
        return True


@dataclass(frozen=True, kw_only=True, slots=True)
class DirectorySource:
    """A non-editable install from a project directory on this machine."""

    kind: ClassVar[str] = "directory"
    path: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": self.path}

    @property
    def is_local_code(self) -> bool:
        return True


@dataclass(frozen=True, kw_only=True, slots=True)
class ArchiveSource:
    """Installed from a wheel or sdist file (or URL) rather than an index."""

    kind: ClassVar[str] = "archive"
    url: str
    sha256: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "url": self.url, "sha256": self.sha256}

    @property
    def is_local_code(self) -> bool:
        return True


@dataclass(frozen=True, kw_only=True, slots=True)
class VcsSource:
    """Installed from a version-control URL; built on the client, never on a host."""

    kind: ClassVar[str] = "vcs"
    vcs: str
    url: str
    commit: str = ""
    requested_revision: str = ""
    subdirectory: str = ""  # where the project sits inside the repository

    def to_dict(self) -> dict[str, Any]:
        data = {
            "kind": self.kind,
            "vcs": self.vcs,
            "url": self.url,
            "commit": self.commit,
            "requested_revision": self.requested_revision,
        }
        if self.subdirectory:
            data["subdirectory"] = self.subdirectory
        return data

    @property
    def is_local_code(self) -> bool:
        return True


@dataclass(frozen=True, kw_only=True, slots=True)
class CondaSource:
    """Installed by a conda package (its files are that package's): it travels with conda."""

    kind: ClassVar[str] = "conda"
    package: str  # the conda package's name, e.g. ``dask-core`` for ``dask``
    channel: str = ""  # redacted

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "package": self.package, "channel": self.channel}

    @property
    def is_local_code(self) -> bool:
        return False


Source = (
    IndexSource | EditableSource | DirectorySource | ArchiveSource | VcsSource | CondaSource
)
SOURCE_KINDS = ("index", "editable", "directory", "archive", "vcs", "conda")


def source_from_dict(data: Mapping[str, Any]) -> Source:
    kind = data.get("kind", "index")
    if kind == "index":
        return IndexSource()
    if kind == "editable":
        return EditableSource(path=data["path"], commit=data.get("commit", ""))
    if kind == "directory":
        return DirectorySource(path=data["path"])
    if kind == "archive":
        return ArchiveSource(url=data["url"], sha256=data.get("sha256", ""))
    if kind == "vcs":
        return VcsSource(
            vcs=data["vcs"],
            url=data["url"],
            commit=data.get("commit", ""),
            requested_revision=data.get("requested_revision", ""),
            subdirectory=data.get("subdirectory", ""),
        )
    if kind == "conda":
        return CondaSource(package=data["package"], channel=data.get("channel", ""))
    raise ValueError(f"unknown source kind {kind!r}")
