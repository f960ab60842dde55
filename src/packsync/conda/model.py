"""The conda side of a snapshot and of a plan: packages seen in the prefix, specs to solve.

Plain dataclasses only (serialised by ``packsync.serial``), so ``packsync.model`` can
hold them without py-rattler.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from packsync.serial import Serialisable


@dataclass(frozen=True, kw_only=True, slots=True)
class CondaPackage(Serialisable):
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


@dataclass(frozen=True, kw_only=True, slots=True)
class CondaEnvironment(Serialisable):
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


@dataclass(frozen=True, kw_only=True, slots=True)
class CondaDecision(Serialisable):
    """What the cluster gets for one conda package: a match spec for the solver, and why."""

    name: str
    local_version: str
    build: str
    action: Literal["pin", "ignore"]
    spec: str  # a conda match spec, e.g. ``gdal ==3.8.4 h2b4f5e1_0``
    reason: str
    cluster_version: str = ""  # known once solved for the target


@dataclass(frozen=True, kw_only=True, slots=True)
class CondaPlan(Serialisable):
    """The conda part of a plan: specs for the target's subdir, from the client's channels."""

    subdir: str  # the workers' conda platform, e.g. linux-64
    channels: tuple[str, ...]  # redacted
    decisions: tuple[CondaDecision, ...]
    python: str = ""  # the Python version conda provides ("" when it does not)
    # the project lock's files for packages only the workers need, should they need them
    constraints: tuple[str, ...] = ()

    def specs(self) -> tuple[str, ...]:
        return tuple(d.spec for d in self.decisions if d.action == "pin")


def python_version(packages: Iterable[Any]) -> str:
    """The version of the ``python`` package among ``packages`` ("" when there is none)."""
    return next((p.version for p in packages if p.name == "python"), "")
