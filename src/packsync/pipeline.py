"""scan -> plan -> build -> lock -> materialize, as thin functions over the stages.

The CLI and ``Cluster`` both call these; each stage reports through the reporter.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from packsync.build.wheels import build_local_code
from packsync.codesync.bundle import CodeBundle, publish_code, unpack_code
from packsync.conda.channels import live_channels
from packsync.conda.locked import CondaLock
from packsync.conda.plan import with_conda_resolution
from packsync.conda.solve import solve_conda
from packsync.config import cache_dir, store_expiry, store_url
from packsync.lock.lockfile import Lock
from packsync.lock.resolve import lock, resolved_before
from packsync.materialize.environments import Environment, materialize
from packsync.model import Plan, PlanOptions, Snapshot, Target
from packsync.plan.options import plan_options
from packsync.plan.resolved import with_resolution
from packsync.plan.rules import enforce, plan
from packsync.progress import NullReporter, Reporter, stage
from packsync.scan import scan
from packsync.scan.indexes import IndexSettings, discover
from packsync.scan.workdir import CodeRules
from packsync.store import Store, gc_if_due, open_store


@dataclass(frozen=True, kw_only=True, slots=True)
class Locked:
    """What the client decided and resolved, ready to hand to hosts."""

    snapshot: Snapshot
    plan: Plan
    lock: Lock
    store: Store
    cache: Path
    settings: IndexSettings  # live, with credentials: kept in memory, never written
    conda_channels: Mapping[str, str] = field(default_factory=dict, repr=False)  # live, too


@dataclass(frozen=True, kw_only=True, slots=True)
class Prepared:
    """A lock materialized on this machine, with the working-directory code beside it."""

    locked: Locked
    environment: Environment
    code: CodeBundle | None
    code_dir: Path | None


def lock_environment(
    *,
    options: PlanOptions | None = None,
    target: Target | str | None = None,
    snapshot: Snapshot | None = None,
    cache: str | os.PathLike[str] | None = None,
    store: str | None = None,
    expiry: str | float | None = None,
    reporter: Reporter | None = None,
) -> Locked:
    """Scan (unless given a snapshot), plan, build local code and resolve the lock.

    Expired store objects (unused for ``expiry``, default 24 h) are collected first, at
    most once an hour.
    """
    reporter = reporter or NullReporter()
    root = cache_dir(cache)
    artifact_store = open_store(store_url(store, root))
    gc_if_due(artifact_store, cache=root, expiry=store_expiry(expiry))
    if snapshot is None:
        with stage(reporter, "scan") as current:
            snapshot = scan()
            current.detail = f"{len(snapshot.dists)} distributions"
    with stage(reporter, "plan") as current:
        options = options or plan_options()
        decided = plan(snapshot, target, options)
        enforce(decided.problems, options.fail_on)
        current.detail = f"{len(decided.synced())} to sync"
    settings = discover()
    artifacts = build_local_code(
        decided,
        store=artifact_store,
        cache=root,
        uv_env=settings.uv_environment(),
        reporter=reporter,
        snapshot=snapshot,
    )
    channels = conda_channels(snapshot)
    conda = _solve_conda(decided, snapshot, channels, root, reporter)
    resolved = lock(
        decided, artifacts, store=artifact_store, settings=settings, cache=root,
        reporter=reporter, conda=conda,
    )
    decided = with_resolution(decided, resolved.versions, resolved.relaxed)
    if conda is not None:
        decided = with_conda_resolution(decided, conda)
    enforce(decided.problems, options.fail_on)
    return Locked(
        snapshot=snapshot,
        plan=decided,
        lock=resolved,
        store=artifact_store,
        cache=root,
        settings=settings,
        conda_channels=channels,
    )


def conda_channels(snapshot: Snapshot) -> dict[str, str]:
    """The live URLs of the snapshot's conda channels (redacted -> live), read from its
    prefix when that is on this machine; in memory only."""
    if snapshot.conda is None:
        return {}
    live = live_channels(snapshot.conda.prefix)
    return {c: live.get(c, c) for c in snapshot.conda.channels} | live


def _solve_conda(
    decided: Plan,
    snapshot: Snapshot,
    channels: Mapping[str, str],
    cache: Path,
    reporter: Reporter,
) -> CondaLock | None:
    if decided.conda is None:
        return None
    with stage(reporter, "conda solve") as current:
        solved = solve_conda(
            decided.conda,
            decided.target,
            channels=channels,
            cache=cache,
            same_platform=decided.target.platform == snapshot.interpreter.platform,
        )
        current.detail = f"{len(solved.packages)} conda packages for {solved.subdir}"
    return solved


def resolve_for_target(
    decided: Plan,
    *,
    cache: str | os.PathLike[str] | None = None,
    reporter: Reporter | None = None,
    snapshot: Snapshot | None = None,
) -> Plan:
    """The plan with the version each worker gets; local code is shown, not built."""
    root = cache_dir(cache)
    resolved = lock(
        _pins(decided), {}, store=open_store(store_url(None, root)), settings=discover(),
        cache=root, reporter=reporter,
    )
    shown = with_resolution(decided, resolved.versions, resolved.relaxed)
    if snapshot is not None and decided.conda is not None:
        conda = _solve_conda(
            decided, snapshot, conda_channels(snapshot), root, reporter or NullReporter()
        )
        if conda is not None:
            shown = with_conda_resolution(shown, conda)
    return shown


def resolved_before_for_target(
    decided: Plan, *, cache: str | os.PathLike[str] | None = None
) -> Plan | None:
    """The plan as ``resolve_for_target`` showed it before (its lock is in the cache),
    without asking any index; None when it was not resolved before."""
    known = resolved_before(_pins(decided), {}, settings=discover(), cache=cache_dir(cache))
    return None if known is None else with_resolution(decided, known.versions, known.relaxed)


def _pins(decided: Plan) -> Plan:
    return replace(decided, decisions=tuple(d for d in decided.decisions if d.action == "pin"))


def prepare_local(
    locked: Locked,
    *,
    python: str | None = None,
    code_rules: CodeRules | None = None,
    reporter: Reporter | None = None,
) -> Prepared:
    """Materialize the lock on this machine and unpack the working-directory code."""
    reporter = reporter or NullReporter()
    client_python = locked.snapshot.interpreter.executable
    environment = materialize(
        locked.lock,
        cache=locked.cache,
        store=locked.store,
        python=python or (client_python if os.path.exists(client_python) else None),
        uv_env=locked.settings.uv_environment(),
        reporter=reporter,
        conda_channels=locked.conda_channels,
    )
    code = publish_code(
        locked.snapshot.code_paths, store=locked.store, reporter=reporter, rules=code_rules
    )
    code_dir = unpack_code(code, store=locked.store, cache=locked.cache) if code else None
    return Prepared(locked=locked, environment=environment, code=code, code_dir=code_dir)
