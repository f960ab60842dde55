"""The conda rules: which match spec each conda package gets for the workers. Pure.

Same subdir as the client (linux-64 -> linux-64): exact version and build. Another
subdir: builds differ per platform, so the version alone; exact for Python, for
packages providing Dask's mandatory distributions and under ``strict``, else the local
version or the nearest older one of its ``major.minor`` series. ``noarch`` packages are
the same file everywhere: exact version and build on any target.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from typing import Literal

from packaging.utils import canonicalize_name

from packsync.conda.locked import CondaLock
from packsync.conda.model import CondaDecision, CondaEnvironment, CondaPackage, CondaPlan
from packsync.conda.names import pypi_name
from packsync.model import Plan, PlanOptions, Target
from packsync.sources import CondaSource

SUBDIRS = {"x86_64": "linux-64", "aarch64": "linux-aarch64"}


def target_subdir(target: Target) -> str:
    """The conda platform of the workers (``linux-64``, ``linux-aarch64``)."""
    return SUBDIRS.get(target.machine, f"linux-{target.machine}")


def plan_conda(
    environment: CondaEnvironment,
    target: Target,
    options: PlanOptions,
    *,
    mandatory: Collection[str],
    left_out: Collection[str] = (),
) -> CondaPlan:
    """One decision per conda package; ``left_out`` are distributions the plan dropped."""
    subdir = target_subdir(target)
    same = subdir == environment.subdir
    decisions = []
    for package in environment.packages:
        why_not = _left_out(package, options, left_out)
        if why_not and package.name != "python":
            decisions.append(_decision(package, "ignore", "", why_not))
            continue
        spec, reason = _spec(package, same, subdir, options.strict, mandatory)
        decisions.append(_decision(package, "pin", spec, reason))
    return CondaPlan(
        subdir=subdir,
        channels=environment.channels,
        decisions=tuple(decisions),
        python=environment.python,
    )


def _left_out(package: CondaPackage, options: PlanOptions, left_out: Collection[str]) -> str:
    names = {canonicalize_name(package.name), pypi_name(package.name)} - {""}
    if names & options.ignore:
        return "in the ignore list"
    if package.python_dists and all(d in left_out for d in package.python_dists):
        return "its Python distributions are left out: " + ", ".join(package.python_dists)
    if options.only is not None and package.python_dists and not (
        names | set(package.python_dists)
    ) & options.only:
        return "not named by only=[...] (the solver adds it back if something needs it)"
    return ""


def _spec(
    package: CondaPackage,
    same: bool,
    subdir: str,
    strict: bool,
    mandatory: Collection[str],
) -> tuple[str, str]:
    name, version = package.name, package.version
    exact_build = f"{name} =={version} {package.build}"
    if package.noarch:
        return exact_build, f"noarch ({package.noarch}): exact version and build anywhere"
    if same:
        return exact_build, "same platform: exact version and build"
    other = f"other platform ({subdir})"
    if name == "python":
        return f"{name} =={version}", f"{other}: the same Python version"
    if set(package.python_dists) & set(mandatory) or pypi_name(name) in mandatory:
        return f"{name} =={version}", f"{other}: Dask needs it, exact version"
    if strict:
        return f"{name} =={version}", f"{other}: strict, exact version"
    series = _major_minor(version)
    return (
        f"{name} {series}.*,<={version}",
        f"{other}: exact version, else the nearest older {series}.* there is",
    )


def _major_minor(version: str) -> str:
    parts = version.split(".")
    return ".".join((parts + ["0"])[:2])


def _decision(
    package: CondaPackage, action: Literal["pin", "ignore"], spec: str, reason: str
) -> CondaDecision:
    return CondaDecision(
        name=package.name,
        local_version=package.version,
        build=package.build,
        action=action,
        spec=spec,
        reason=reason,
    )


def with_conda_resolution(decided: Plan, conda: CondaLock) -> Plan:
    """The plan with the version each conda package (and each distribution it provides)
    gets on the workers."""
    versions = conda.versions
    decisions = tuple(
        replace(d, cluster_version=versions.get(d.source.package, ""))
        if d.action == "conda" and isinstance(d.source, CondaSource) else d
        for d in decided.decisions
    )
    part = decided.conda
    if part is not None:
        part = replace(part, decisions=tuple(
            replace(d, cluster_version=versions.get(d.name, "")) for d in part.decisions
        ))
    return replace(decided, decisions=decisions, conda=part)
