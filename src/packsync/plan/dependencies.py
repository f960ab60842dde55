"""Who requires whom in a snapshot, and on which platform: the facts the plan rules use.

Markers are evaluated twice: with the client's own values (what is installed and why)
and with the target's (what a Linux worker would need), so a package pulled in only by
``sys_platform == "darwin"`` can be told apart from one every platform needs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from packaging.markers import InvalidMarker, Marker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from packsync.model import Problem, Severity, Snapshot, Target


def target_environment(target: Target, client: Mapping[str, str]) -> dict[str, str]:
    """PEP 508 marker values of a worker on ``target`` (Linux, CPython of ``target.python``)."""
    major_minor = ".".join(target.python.split(".")[:2])
    return {
        **client,
        "os_name": "posix",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": target.machine,
        "platform_release": "",
        "platform_version": "",
        "python_version": major_minor,
        "python_full_version": target.python,
        "implementation_name": "cpython",
        "implementation_version": target.python,
        "platform_python_implementation": "CPython",
    }


def marker_holds(marker: str, environment: Mapping[str, str]) -> bool:
    """Whether a PEP 508 marker (empty: always) holds there; one that cannot be evaluated
    counts as holding."""
    if not marker:
        return True
    try:
        return Marker(marker).evaluate({**environment, "extra": ""})
    except (UndefinedComparison, UndefinedEnvironmentName, InvalidMarker):
        return True


@dataclass(frozen=True, kw_only=True, slots=True)
class Edge:
    """One ``Requires-Dist`` line: ``requirer`` needs ``name`` (both canonical)."""

    requirer: str
    name: str
    requirement: Requirement

    def applies(self, environment: Mapping[str, str], *, extras: bool = False) -> bool:
        """Whether the requirement holds there; ``extras`` counts extra-only ones too."""
        marker = self.requirement.marker
        if marker is None:
            return True
        try:
            if marker.evaluate({**environment, "extra": ""}):
                return True
        except (UndefinedComparison, UndefinedEnvironmentName, InvalidMarker):
            return True  # cannot tell: assume needed rather than drop it
        return extras and "extra" in str(marker)

    @property
    def marker(self) -> str:
        return str(self.requirement.marker or "")


@dataclass(frozen=True, kw_only=True, slots=True)
class DependencyGraph:
    """Every requirement edge between installed distributions (and to missing ones)."""

    edges: tuple[Edge, ...]
    versions: Mapping[str, str]

    @classmethod
    def of(cls, snapshot: Snapshot) -> DependencyGraph:
        edges = []
        for dist in snapshot.dists:
            for text in dist.requires:
                try:
                    requirement = Requirement(text)
                except InvalidRequirement:
                    continue
                name = canonicalize_name(requirement.name)
                edges.append(Edge(requirer=dist.key, name=name, requirement=requirement))
        return cls(edges=tuple(edges), versions={d.key: d.version for d in snapshot.dists})

    def requiring(self, name: str) -> tuple[Edge, ...]:
        return tuple(e for e in self.edges if e.name == name and e.requirer != name)

    def requirers(self, name: str, environment: Mapping[str, str]) -> set[str]:
        return {e.requirer for e in self.requiring(name) if e.applies(environment)}

    def closure(self, roots: Iterable[str], environment: Mapping[str, str]) -> set[str]:
        """The roots and every installed distribution they need, extras included."""
        needed: set[str] = set()
        pending = [r for r in roots if r in self.versions]
        while pending:
            key = pending.pop()
            if key in needed:
                continue
            needed.add(key)
            pending += [
                e.name
                for e in self.edges
                if e.requirer == key and e.name in self.versions
                and e.applies(environment, extras=True)
            ]
        return needed

    def conflicts(
        self, among: Iterable[str], environment: Mapping[str, str], severity: Severity
    ) -> list[Problem]:
        """What ``pip check`` would say about the distributions ``among``."""
        members = set(among)
        problems = []
        for edge in self.edges:
            if edge.requirer not in members or not edge.applies(environment):
                continue
            requirer = f"{edge.requirer} {self.versions[edge.requirer]}"
            installed = self.versions.get(edge.name)
            if installed is None:
                problems.append(Problem(
                    severity=severity,
                    message=f"{requirer} requires {edge.requirement}, which is not installed",
                    packages=(edge.requirer, edge.name),
                ))
                continue
            if not _satisfies(installed, edge.requirement):
                problems.append(Problem(
                    severity=severity,
                    message=f"{requirer} requires {edge.requirement}, but {edge.name} "
                            f"{installed} is installed",
                    packages=(edge.requirer, edge.name),
                ))
        return problems


def _satisfies(version: str, requirement: Requirement) -> bool:
    if requirement.url or not requirement.specifier:
        return True
    try:
        return requirement.specifier.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return True  # reported elsewhere as broken metadata
