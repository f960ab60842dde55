"""The conda part of a lock: an explicit, hash-pinned list of package files.

It sits in ``pylock.toml`` under ``[tool.packsync.conda]``, so the environment digest
(the SHA-256 of the whole lock) covers the conda and the pip parts together. URLs are
redacted (no channel token); the installer maps them back to the live channel URLs it
is handed in memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from packsync.conda.model import python_version
from packsync.errors import LockError


@dataclass(frozen=True, kw_only=True, slots=True)
class LockedCondaPackage:
    """One conda package file, pinned by SHA-256."""

    name: str
    version: str
    build: str
    build_number: int
    subdir: str
    channel: str  # redacted
    url: str  # redacted
    file_name: str
    sha256: str
    md5: str = ""
    size: int = 0
    noarch: str = ""
    depends: tuple[str, ...] = ()
    constrains: tuple[str, ...] = ()
    python_site_packages_path: str = ""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "build": self.build,
            "build-number": self.build_number,
            "subdir": self.subdir,
            "channel": self.channel,
            "url": self.url,
            "file-name": self.file_name,
            "sha256": self.sha256,
            "md5": self.md5,
            "size": self.size,
            "noarch": self.noarch,
            "depends": list(self.depends),
            "constrains": list(self.constrains),
        }
        if self.python_site_packages_path:
            data["python-site-packages-path"] = self.python_site_packages_path
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LockedCondaPackage:
        return cls(
            name=data["name"],
            version=data["version"],
            build=data["build"],
            build_number=int(data.get("build-number", 0)),
            subdir=data["subdir"],
            channel=data["channel"],
            url=data["url"],
            file_name=data["file-name"],
            sha256=data["sha256"],
            md5=data.get("md5", ""),
            size=int(data.get("size", 0)),
            noarch=data.get("noarch", ""),
            depends=tuple(data.get("depends", ())),
            constrains=tuple(data.get("constrains", ())),
            python_site_packages_path=data.get("python-site-packages-path", ""),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class CondaLock:
    """The conda packages of an environment, solved for one subdir."""

    subdir: str
    channels: tuple[str, ...]  # redacted
    packages: tuple[LockedCondaPackage, ...]

    @property
    def python(self) -> str:
        """The version of the conda ``python`` package ("" when Python is not from conda)."""
        return python_version(self.packages)

    @property
    def versions(self) -> dict[str, str]:
        return {p.name: p.version for p in self.packages}

    def to_dict(self) -> dict[str, Any]:
        return {
            "subdir": self.subdir,
            "channels": list(self.channels),
            "packages": [p.to_dict() for p in self.packages],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], origin: str = "the lock") -> CondaLock:
        try:
            return cls(
                subdir=data["subdir"],
                channels=tuple(data.get("channels", ())),
                packages=tuple(LockedCondaPackage.from_dict(p) for p in data["packages"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise LockError(
                f"{origin} has a damaged [tool.packsync.conda] table: {error!r}",
                path=origin,
                hint="write a new lock with `packsync lock -o pylock.toml`",
            ) from error
