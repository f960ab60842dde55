"""The conda side of a snapshot and of a plan: packages seen in the prefix, specs to solve.

Plain dataclasses only, so ``packsync.model`` can hold them without py-rattler.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True, kw_only=True, slots=True)
class CondaPackage:
    """One ``conda-meta/*.json`` record. URLs are redacted: no channel token is kept."""

    name: str
    version: str
    build: str
    build_number: int = 0
    subdir: str = ""
    channel: str = ""
    noarch: str = ""  # "python", "generic" or ""
    requested_spec: str = ""  # what the user asked for, when they did
    depends: tuple[str, ...] = ()
    python_dists: tuple[str, ...] = ()  # canonical names of the distributions it installs

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "build": self.build,
            "build_number": self.build_number,
            "subdir": self.subdir,
            "channel": self.channel,
            "noarch": self.noarch,
            "requested_spec": self.requested_spec,
            "depends": list(self.depends),
            "python_dists": list(self.python_dists),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CondaPackage:
        return cls(
            name=data["name"],
            version=data["version"],
            build=data["build"],
            build_number=int(data.get("build_number", 0)),
            subdir=data.get("subdir", ""),
            channel=data.get("channel", ""),
            noarch=data.get("noarch", ""),
            requested_spec=data.get("requested_spec", ""),
            depends=tuple(data.get("depends", ())),
            python_dists=tuple(data.get("python_dists", ())),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class CondaEnvironment:
    """The conda side of a prefix (conda, mamba, micromamba or pixi made it)."""

    prefix: str
    subdir: str  # the prefix's platform: linux-64, linux-aarch64, osx-arm64, ...
    channels: tuple[str, ...]  # redacted, in the order they were first seen
    packages: tuple[CondaPackage, ...]

    @property
    def python(self) -> str:
        """The version of the conda ``python`` package ("" when Python is not from conda)."""
        return python_version(self.packages)

    def get(self, name: str) -> CondaPackage | None:
        for package in self.packages:
            if package.name == name:
                return package
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "subdir": self.subdir,
            "channels": list(self.channels),
            "packages": [p.to_dict() for p in self.packages],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CondaEnvironment:
        return cls(
            prefix=data.get("prefix", ""),
            subdir=data["subdir"],
            channels=tuple(data.get("channels", ())),
            packages=tuple(CondaPackage.from_dict(p) for p in data.get("packages", ())),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class CondaDecision:
    """What the cluster gets for one conda package: a match spec for the solver, and why."""

    name: str
    local_version: str
    build: str
    action: Literal["pin", "ignore"]
    spec: str  # a conda match spec, e.g. ``gdal ==3.8.4 h2b4f5e1_0``
    reason: str
    cluster_version: str = ""  # known once solved for the target

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "local_version": self.local_version,
            "build": self.build,
            "action": self.action,
            "spec": self.spec,
            "reason": self.reason,
            "cluster_version": self.cluster_version,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CondaDecision:
        return cls(
            name=data["name"],
            local_version=data["local_version"],
            build=data.get("build", ""),
            action=data["action"],
            spec=data.get("spec", ""),
            reason=data["reason"],
            cluster_version=data.get("cluster_version", ""),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class CondaPlan:
    """The conda part of a plan: specs for the target's subdir, from the client's channels."""

    subdir: str  # the workers' conda platform, e.g. linux-64
    channels: tuple[str, ...]  # redacted
    decisions: tuple[CondaDecision, ...]
    python: str = ""  # the Python version conda provides ("" when it does not)

    def specs(self) -> tuple[str, ...]:
        return tuple(d.spec for d in self.decisions if d.action == "pin")

    def to_dict(self) -> dict[str, Any]:
        return {
            "subdir": self.subdir,
            "channels": list(self.channels),
            "decisions": [d.to_dict() for d in self.decisions],
            "python": self.python,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CondaPlan:
        return cls(
            subdir=data["subdir"],
            channels=tuple(data.get("channels", ())),
            decisions=tuple(CondaDecision.from_dict(d) for d in data.get("decisions", ())),
            python=data.get("python", ""),
        )


def python_version(packages: Iterable[Any]) -> str:
    """The version of the ``python`` package among ``packages`` ("" when there is none)."""
    return next((p.version for p in packages if p.name == "python"), "")
