"""The rules of package sync: Snapshot + Target + options -> Plan. Pure: no I/O at all.

Every decision carries its reason, so ``packsync plan`` can explain what each worker
gets before anything is built or launched.
"""

from __future__ import annotations

from collections.abc import Mapping

from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from packsync.errors import PlanError
from packsync.model import (
    ArchiveSource,
    Decision,
    InstalledDist,
    Plan,
    PlanOptions,
    Snapshot,
    Target,
)

MANDATORY = ("dask", "distributed", "tornado", "cloudpickle", "msgpack")


TARGET_MACHINES = ("x86_64", "aarch64")
DEFAULT_LIBC = "manylinux_2_28"


def default_target(snapshot: Snapshot) -> Target:
    """Workers like the client when it runs Linux, else Linux x86_64; the client's Python."""
    os_name, _, machine = snapshot.interpreter.platform.partition("-")
    if os_name == "linux" and machine in TARGET_MACHINES:
        return Target(
            os=os_name,
            machine=machine,
            libc=snapshot.interpreter.libc or DEFAULT_LIBC,
            python=snapshot.interpreter.version,
        )
    return Target(machine="x86_64", libc=DEFAULT_LIBC, python=snapshot.interpreter.version)


def resolve_target(snapshot: Snapshot, requested: Target | str | None) -> Target:
    """The target asked for (a ``Target`` or a name like ``linux-aarch64``), or the default."""
    if requested is None:
        return default_target(snapshot)
    if isinstance(requested, Target):
        return requested
    os_name, _, machine = requested.partition("-")
    if os_name != "linux" or machine not in TARGET_MACHINES:
        raise PlanError(
            f"workers cannot run on {requested!r}",
            hint="choose one of: " + ", ".join(f"linux-{m}" for m in TARGET_MACHINES),
        )
    default = default_target(snapshot)
    libc = default.libc if default.platform == requested else DEFAULT_LIBC
    return Target(machine=machine, libc=libc, python=snapshot.interpreter.version)


def plan(
    snapshot: Snapshot, target: Target | str | None = None, options: PlanOptions | None = None
) -> Plan:
    """Decide, for each distribution of the snapshot, what the cluster gets."""
    target = resolve_target(snapshot, target)
    options = options or PlanOptions()
    _check_mandatory(snapshot, options)
    same_platform = target.platform == snapshot.interpreter.platform
    required_by = _dependents(snapshot, snapshot.environment)

    decisions: list[Decision] = []
    broken: list[str] = []
    for dist in snapshot.dists:
        if dist.key in options.ignore:
            keepers = sorted(k for k in required_by.get(dist.key, ()) if k not in options.ignore)
            if not keepers:
                decisions.append(_decide(dist, "ignore", "", "in the ignore list"))
                continue
            reason_prefix = f"ignored, but required by {', '.join(keepers)}; "
        else:
            reason_prefix = ""
        if dist.problems:
            broken.append(f"{dist.name} {dist.version}: {'; '.join(dist.problems)}")
            continue
        decisions.append(_decide_synced(dist, same_platform, reason_prefix))

    if broken:
        raise PlanError(
            "these installed distributions have broken metadata:\n  " + "\n  ".join(broken),
            package=", ".join(b.split(" ", 1)[0] for b in broken),
            hint="reinstall them, or leave them out with ignore=[...]",
        )
    return Plan(target=target, decisions=tuple(decisions), indexes=snapshot.indexes)


def _check_mandatory(snapshot: Snapshot, options: PlanOptions) -> None:
    missing = [name for name in MANDATORY if snapshot.get(name) is None]
    if missing:
        raise PlanError(
            "a Dask cluster needs these packages in your environment, and they are missing: "
            + ", ".join(missing),
            package=", ".join(missing),
            hint=f"install them where you run Python: pip install {' '.join(missing)}",
        )
    ignored = sorted(set(MANDATORY) & options.ignore)
    if ignored:
        raise PlanError(
            f"these packages cannot be ignored, the cluster needs them: {', '.join(ignored)}",
            package=", ".join(ignored),
            hint="remove them from ignore=[...]",
        )


def _decide_synced(dist: InstalledDist, same_platform: bool, prefix: str) -> Decision:
    source = dist.source
    if isinstance(source, ArchiveSource):
        if source.url.startswith("file:"):
            why = prefix + "installed from a local file"
            return _decide(dist, "upload", f"=={dist.version}", why)
        return _decide(dist, "pin", f"@ {source.url}", prefix + "installed from this URL")
    if source.is_local_code:
        return _decide(
            dist, "build", f"=={dist.version}", prefix + f"{source.kind} install: wheel built here"
        )
    if same_platform or canonicalize_name(dist.name) in MANDATORY:
        why = "same platform: exact version" if same_platform else "mandatory: exact version"
        return _decide(dist, "pin", f"=={dist.version}", prefix + why)
    major_minor = ".".join(dist.version.split(".")[:2])
    return _decide(dist, "pin", f"=={major_minor}.*", prefix + "other platform: major.minor match")


def _decide(dist: InstalledDist, action: str, specifier: str, reason: str) -> Decision:
    return Decision(
        name=dist.name,
        local_version=dist.version,
        action=action,  # type: ignore[arg-type]
        specifier=specifier,
        reason=reason,
        source=dist.source,
    )


def _dependents(snapshot: Snapshot, environment: Mapping[str, str]) -> dict[str, set[str]]:
    """For each name, the installed distributions whose requirements pull it in."""
    result: dict[str, set[str]] = {}
    for dist in snapshot.dists:
        for text in dist.requires:
            try:
                req = Requirement(text)
                if req.marker and not req.marker.evaluate({**environment, "extra": ""}):
                    continue
            except (InvalidRequirement, InvalidMarker, UndefinedComparison,
                    UndefinedEnvironmentName):
                continue
            result.setdefault(canonicalize_name(req.name), set()).add(dist.key)
    return result
