"""The values that flow through packsync: what was scanned, decided and built.

Snapshot, plan and artifact models; where a distribution came from is in
``packsync.sources``, the conda packages in ``packsync.conda.model``. Every model is
a frozen dataclass serialised by ``packsync.serial`` (``to_dict``/``from_dict``), so
that a snapshot or plan can be saved as JSON, planned elsewhere, and compared in tests.
A saved snapshot or plan carries its ``format``: a reader refuses any other. No model
ever holds a credential: index URLs are stored redacted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from packaging.utils import canonicalize_name

from packsync.conda.model import CondaEnvironment, CondaPlan
from packsync.serial import KeyStyle, Serialisable
from packsync.sources import IndexSource, Source

SNAPSHOT_FORMAT = 1  # the JSON of `packsync scan --json`
PLAN_FORMAT = 1

# --------------------------------------------------------------------------- snapshot


@dataclass(frozen=True, kw_only=True, slots=True)
class Interpreter(Serialisable):
    """The Python that ran the scan."""

    implementation: str
    version: str
    platform: str
    libc: str = ""
    executable: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class InstalledDist(Serialisable):
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


@dataclass(frozen=True, kw_only=True, slots=True)
class IndexConfig(Serialisable):
    """Where packages come from, as configured on the client (URLs redacted)."""

    index_url: str = ""
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    origins: Mapping[str, str] = field(default_factory=dict)


LockKind = Literal["uv.lock", "pylock.toml", "pixi.lock"]


@dataclass(frozen=True, kw_only=True, slots=True)
class LockedVersion(Serialisable):
    """One package version a project lock pins, and the platforms it is for (a PEP 508
    marker; empty: every platform the lock covers)."""

    name: str
    version: str
    marker: str = ""
    # a conda package (pixi.lock): the build and file locked for the marker's platform,
    # and the file's SHA-256 when the lock has it
    build: str = ""
    file: str = ""
    sha256: str = ""

    @property
    def key(self) -> str:
        return canonicalize_name(self.name)


@dataclass(frozen=True, kw_only=True, slots=True)
class ProjectLock(Serialisable):
    """A lock file of the working project (``uv.lock``, ``pylock.toml``, ``pixi.lock``):
    the versions it resolved for every platform it covers."""

    path: str
    kind: LockKind
    packages: tuple[LockedVersion, ...]
    environments: tuple[str, ...] = ()  # markers of the platforms covered; empty: any
    environment: str = ""  # the pixi environment read (a pixi.lock locks several)
    others: tuple[ProjectLock, ...] = ()  # a pixi.lock's other environments, each as one

    @property
    def label(self) -> str:
        """The lock as a plan names it: its path, and the pixi environment read."""
        return lock_label(self.path, self.environment)


def lock_label(lock: str, environment: str) -> str:
    """A project lock (its path or kind) named with the pixi environment read, if any."""
    return f"{lock} (environment {environment})" if environment else lock


@dataclass(frozen=True, kw_only=True, slots=True)
class Snapshot(Serialisable):
    """Everything packsync knows about the client environment: its only witness."""

    format: int = field(default=SNAPSHOT_FORMAT, init=False, repr=False)
    interpreter: Interpreter
    environment: Mapping[str, str]
    prefix: str
    dists: tuple[InstalledDist, ...]
    code_paths: tuple[str, ...] = ()
    indexes: IndexConfig = field(default_factory=IndexConfig)
    notes: tuple[str, ...] = ()  # what the scan saw and deliberately left out
    conda: CondaEnvironment | None = None  # when the prefix is a conda environment
    project_locks: tuple[ProjectLock, ...] = ()  # the working project's own locks

    def get(self, name: str) -> InstalledDist | None:
        key = canonicalize_name(name)
        for dist in self.dists:
            if dist.key == key:
                return dist
        return None


# --------------------------------------------------------------------------- plan

Action = Literal["pin", "build", "upload", "ignore", "conda"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Target(Serialisable):
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


Severity = Literal["critical", "warning", "notice"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Decision(Serialisable):
    """What the cluster gets for one local distribution, and why."""

    name: str
    local_version: str
    action: Action
    specifier: str
    reason: str
    source: Source = field(default_factory=IndexSource)
    fallbacks: tuple[str, ...] = ()  # looser specifiers to try if the target has no such file
    if_relaxed: Severity = "warning"  # how much a fallback matters (critical: it stops)
    cluster_version: str = ""  # known once resolved for the target

    @property
    def key(self) -> str:
        return canonicalize_name(self.name)


ACCELERATOR = re.compile(r"cpu|cu\d{2,4}|rocm\d+(\.\d+)*")  # PyTorch's variant labels
FailOn = Literal["critical", "warning", "any"]
FAIL_ON_LEVELS: Mapping[str, frozenset[str]] = {
    "critical": frozenset({"critical"}),
    "warning": frozenset({"critical", "warning"}),
    "any": frozenset({"critical", "warning", "notice"}),
}


@dataclass(frozen=True, kw_only=True, slots=True)
class PlanOptions:
    """What the user asked for beyond the defaults.

    ``only`` is ``None`` for "everything"; ``fail_on`` picks which problems stop a launch;
    ``relax_same_platform`` lets a same-platform pin the indexes lack become the nearest
    version there (a warning, not a critical problem); ``accelerator`` picks the workers'
    variant of the packages published per accelerator, from ``accelerator_index``;
    ``lock_environment`` names the environment of the project's ``pixi.lock`` the workers
    get (empty: the one this machine runs).
    """

    ignore: frozenset[str] = frozenset()
    only: frozenset[str] | None = None
    strict: bool = False
    fail_on: FailOn = "critical"
    relax_same_platform: bool = False
    accelerator: str = ""
    accelerator_index: str = ""  # the index URL of each accelerator, as {accelerator}
    lock_environment: str = ""

    @classmethod
    def create(
        cls,
        *,
        ignore: Iterable[str] = (),
        only: Iterable[str] | None = None,
        strict: bool = False,
        fail_on: str = "critical",
        relax_same_platform: bool = False,
        accelerator: str = "",
        accelerator_index: str = "",
        lock_environment: str = "",
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
            relax_same_platform=relax_same_platform,
            accelerator=accelerator,
            accelerator_index=accelerator_index,
            lock_environment=lock_environment,
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Problem(Serialisable):
    """Something the user should know about the plan, and how much it matters."""

    severity: Severity
    message: str
    packages: tuple[str, ...] = ()
    hint: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class Relaxation(Serialisable):
    """A pin the target could not install, and the nearest version it got instead.

    Kept in the lock's ``[tool.packsync]`` TOML table, hence PEP 751's kebab-case keys.
    """

    key_style: ClassVar[KeyStyle] = "kebab"
    name: str
    local_version: str
    specifier: str  # the looser specifier that resolved
    version: str  # what the target gets
    reason: str  # why the exact version was impossible


@dataclass(frozen=True, kw_only=True, slots=True)
class Plan(Serialisable):
    """One decision per local distribution, for one target."""

    format: int = field(default=PLAN_FORMAT, init=False, repr=False)
    target: Target
    decisions: tuple[Decision, ...]
    indexes: IndexConfig = field(default_factory=IndexConfig)
    problems: tuple[Problem, ...] = ()
    conda: CondaPlan | None = None  # the conda packages, when the client is a conda prefix
    project_lock: str = ""  # the project lock the target's versions come from, if any
    project_lock_environment: str = ""  # the pixi environment of that lock, if one
    # its versions for what the workers alone need (resolved there, held to the lock)
    lock_constraints: tuple[str, ...] = ()
    accelerator: str = ""  # the accelerator of the workers' variant packages, if any
    accelerator_index: str = ""  # where those variants come from

    def synced(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if d.action != "ignore")

    def pip_synced(self) -> tuple[Decision, ...]:
        """What uv installs: everything synced that conda does not provide."""
        return tuple(d for d in self.decisions if d.action not in ("ignore", "conda"))

    def local_code(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if d.action in ("build", "upload"))


# --------------------------------------------------------------------------- artifacts


@dataclass(frozen=True, kw_only=True, slots=True)
class Artifact(Serialisable):
    """A wheel of local code, stored under its SHA-256."""

    name: str
    version: str
    filename: str
    sha256: str
