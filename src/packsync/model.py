"""The values that flow through packsync: what was scanned, decided and built.

Snapshot, plan and artifact models; where a distribution came from is in
``packsync.sources``, the conda packages in ``packsync.conda.model``. Every model is
a frozen dataclass with ``to_dict``/``from_dict`` so that a snapshot or plan can be
saved as JSON, planned elsewhere, and compared in tests. No model ever holds a
credential: index URLs are stored redacted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from packaging.utils import canonicalize_name

from packsync.conda.model import CondaEnvironment, CondaPlan
from packsync.sources import IndexSource, Source, source_from_dict

# --------------------------------------------------------------------------- snapshot


@dataclass(frozen=True, kw_only=True, slots=True)
class Interpreter:
    """The Python that ran the scan."""

    implementation: str
    version: str
    platform: str
    libc: str = ""
    executable: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "implementation": self.implementation,
            "version": self.version,
            "platform": self.platform,
            "libc": self.libc,
            "executable": self.executable,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Interpreter:
        return cls(
            implementation=data["implementation"],
            version=data["version"],
            platform=data["platform"],
            libc=data.get("libc", ""),
            executable=data.get("executable", ""),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class InstalledDist:
    """One installed distribution, as Python would import it."""

    name: str
    version: str
    source: Source = field(default_factory=IndexSource)
    installer: str = ""
    requested: bool = False
    requires: tuple[str, ...] = ()
    location: str = ""
    problems: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return canonicalize_name(self.name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "source": self.source.to_dict(),
            "installer": self.installer,
            "requested": self.requested,
            "requires": list(self.requires),
            "location": self.location,
            "problems": list(self.problems),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InstalledDist:
        return cls(
            name=data["name"],
            version=data["version"],
            source=source_from_dict(data.get("source", {})),
            installer=data.get("installer", ""),
            requested=bool(data.get("requested", False)),
            requires=tuple(data.get("requires", ())),
            location=data.get("location", ""),
            problems=tuple(data.get("problems", ())),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class IndexConfig:
    """Where packages come from, as configured on the client (URLs redacted)."""

    index_url: str = ""
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    origins: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index_url": self.index_url,
            "extra_index_urls": list(self.extra_index_urls),
            "find_links": list(self.find_links),
            "origins": dict(self.origins),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IndexConfig:
        return cls(
            index_url=data.get("index_url", ""),
            extra_index_urls=tuple(data.get("extra_index_urls", ())),
            find_links=tuple(data.get("find_links", ())),
            origins=dict(data.get("origins", {})),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Snapshot:
    """Everything packsync knows about the client environment: its only witness."""

    interpreter: Interpreter
    environment: Mapping[str, str]
    prefix: str
    dists: tuple[InstalledDist, ...]
    code_paths: tuple[str, ...] = ()
    indexes: IndexConfig = field(default_factory=IndexConfig)
    notes: tuple[str, ...] = ()  # what the scan saw and deliberately left out
    conda: CondaEnvironment | None = None  # when the prefix is a conda environment

    def get(self, name: str) -> InstalledDist | None:
        key = canonicalize_name(name)
        for dist in self.dists:
            if dist.key == key:
                return dist
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "interpreter": self.interpreter.to_dict(),
            "environment": dict(self.environment),
            "prefix": self.prefix,
            "dists": [d.to_dict() for d in self.dists],
            "code_paths": list(self.code_paths),
            "indexes": self.indexes.to_dict(),
            "notes": list(self.notes),
            "conda": None if self.conda is None else self.conda.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Snapshot:
        return cls(
            interpreter=Interpreter.from_dict(data["interpreter"]),
            environment=dict(data["environment"]),
            prefix=data.get("prefix", ""),
            dists=tuple(InstalledDist.from_dict(d) for d in data["dists"]),
            code_paths=tuple(data.get("code_paths", ())),
            indexes=IndexConfig.from_dict(data.get("indexes", {})),
            notes=tuple(data.get("notes", ())),
            conda=CondaEnvironment.from_dict(data["conda"]) if data.get("conda") else None,
        )


# --------------------------------------------------------------------------- plan

Action = Literal["pin", "build", "upload", "ignore", "conda"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Target:
    """The platform the workers run on."""

    os: str = "linux"
    machine: str = "x86_64"
    libc: str = "manylinux_2_28"
    python: str = ""

    @property
    def platform(self) -> str:
        return f"{self.os}-{self.machine}"

    @property
    def uv_platform(self) -> str:
        """The value of uv's ``--python-platform`` for this target."""
        return f"{self.machine}-{self.libc}" if self.libc else f"{self.machine}-unknown-linux-gnu"

    def to_dict(self) -> dict[str, Any]:
        return {"os": self.os, "machine": self.machine, "libc": self.libc, "python": self.python}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Target:
        return cls(
            os=data["os"], machine=data["machine"], libc=data["libc"], python=data["python"]
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Decision:
    """What the cluster gets for one local distribution, and why."""

    name: str
    local_version: str
    action: Action
    specifier: str
    reason: str
    source: Source = field(default_factory=IndexSource)
    fallbacks: tuple[str, ...] = ()  # looser specifiers to try if the target has no such file
    cluster_version: str = ""  # known once resolved for the target

    @property
    def key(self) -> str:
        return canonicalize_name(self.name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "local_version": self.local_version,
            "specifier": self.specifier,
            "cluster_version": self.cluster_version,
            "action": self.action,
            "reason": self.reason,
            "source": self.source.to_dict(),
            "fallbacks": list(self.fallbacks),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        return cls(
            name=data["name"],
            local_version=data["local_version"],
            action=data["action"],
            specifier=data["specifier"],
            reason=data["reason"],
            source=source_from_dict(data.get("source", {})),
            fallbacks=tuple(data.get("fallbacks", ())),
            cluster_version=data.get("cluster_version", ""),
        )


Severity = Literal["critical", "warning", "notice"]
FailOn = Literal["critical", "warning", "any"]
FAIL_ON_LEVELS: Mapping[str, frozenset[str]] = {
    "critical": frozenset({"critical"}),
    "warning": frozenset({"critical", "warning"}),
    "any": frozenset({"critical", "warning", "notice"}),
}


@dataclass(frozen=True, kw_only=True, slots=True)
class PlanOptions:
    """What the user asked for beyond the defaults.

    ``only`` is ``None`` for "everything"; ``fail_on`` picks which problems stop a launch.
    """

    ignore: frozenset[str] = frozenset()
    only: frozenset[str] | None = None
    strict: bool = False
    fail_on: FailOn = "critical"

    @classmethod
    def create(
        cls,
        *,
        ignore: Iterable[str] = (),
        only: Iterable[str] | None = None,
        strict: bool = False,
        fail_on: str = "critical",
    ) -> PlanOptions:
        if fail_on not in FAIL_ON_LEVELS:
            raise ValueError(
                f"fail_on={fail_on!r} is not one of {', '.join(FAIL_ON_LEVELS)}"
            )
        return cls(
            ignore=frozenset(canonicalize_name(n) for n in ignore),
            only=None if only is None else frozenset(canonicalize_name(n) for n in only),
            strict=strict,
            fail_on=fail_on,  # type: ignore[arg-type]
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Problem:
    """Something the user should know about the plan, and how much it matters."""

    severity: Severity
    message: str
    packages: tuple[str, ...] = ()
    hint: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "message": self.message,
            "packages": list(self.packages),
            "hint": self.hint,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Problem:
        return cls(
            severity=data["severity"],
            message=data["message"],
            packages=tuple(data.get("packages", ())),
            hint=data.get("hint", ""),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Relaxation:
    """A pin the target could not install, and the nearest version it got instead."""

    name: str
    local_version: str
    specifier: str  # the looser specifier that resolved
    version: str  # what the target gets
    reason: str  # why the exact version was impossible

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "local-version": self.local_version,
            "specifier": self.specifier,
            "version": self.version,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Relaxation:
        return cls(
            name=data["name"],
            local_version=data["local-version"],
            specifier=data["specifier"],
            version=data["version"],
            reason=data["reason"],
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Plan:
    """One decision per local distribution, for one target."""

    target: Target
    decisions: tuple[Decision, ...]
    indexes: IndexConfig = field(default_factory=IndexConfig)
    problems: tuple[Problem, ...] = ()
    conda: CondaPlan | None = None  # the conda packages, when the client is a conda prefix

    def synced(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if d.action != "ignore")

    def pip_synced(self) -> tuple[Decision, ...]:
        """What uv installs: everything synced that conda does not provide."""
        return tuple(d for d in self.decisions if d.action not in ("ignore", "conda"))

    def local_code(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if d.action in ("build", "upload"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target.to_dict(),
            "decisions": [d.to_dict() for d in self.decisions],
            "indexes": self.indexes.to_dict(),
            "problems": [p.to_dict() for p in self.problems],
            "conda": None if self.conda is None else self.conda.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        return cls(
            target=Target.from_dict(data["target"]),
            decisions=tuple(Decision.from_dict(d) for d in data["decisions"]),
            indexes=IndexConfig.from_dict(data.get("indexes", {})),
            problems=tuple(Problem.from_dict(p) for p in data.get("problems", ())),
            conda=CondaPlan.from_dict(data["conda"]) if data.get("conda") else None,
        )


# --------------------------------------------------------------------------- artifacts


@dataclass(frozen=True, kw_only=True, slots=True)
class Artifact:
    """A wheel of local code, stored under its SHA-256."""

    name: str
    version: str
    filename: str
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "filename": self.filename,
            "sha256": self.sha256,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Artifact:
        return cls(
            name=data["name"],
            version=data["version"],
            filename=data["filename"],
            sha256=data["sha256"],
        )
