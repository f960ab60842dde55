"""Plan + local wheels -> a PEP 751 ``pylock.toml`` resolved by uv for the target.

Each pin is locked exactly when the target can install it; when uv finds nothing for
it, the pin is relaxed to its fallbacks (nearest versions first) and the relaxation
recorded with uv's reason. Resolving is skipped when the same plan was resolved before.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from packaging.markers import default_environment
from packaging.utils import canonicalize_name

from packsync.conda.locked import CondaLock
from packsync.errors import LockError, tail
from packsync.lock.index_failures import explain as explain_index_failure
from packsync.lock.lockfile import (
    LOCK_FORMAT,
    WHEELS_DIR,
    Lock,
    PacksyncTable,
    empty_document,
    render,
)
from packsync.lock.tokens import mask_document
from packsync.model import Artifact, Decision, Plan, Relaxation
from packsync.plan.dependencies import marker_holds, target_environment
from packsync.progress import NullReporter, Reporter, stage
from packsync.redact import redact_text, secrets_in
from packsync.scan.indexes import IndexSettings
from packsync.store import Store
from packsync.uv_errors import ACCESS, failing_package, why_unavailable
from packsync.uvtool import run_uv

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def lock(
    plan: Plan,
    artifacts: Mapping[str, Artifact],
    *,
    store: Store,
    settings: IndexSettings,
    cache: Path,
    reporter: Reporter | None = None,
    conda: CondaLock | None = None,
) -> Lock:
    """Resolve the plan for its target into a lock (reusing an earlier identical resolve).

    ``conda``, the solved conda part, is recorded beside the pip part, so the digest
    covers both.
    """
    reporter = reporter or NullReporter()
    with stage(reporter, "lock") as current:
        requirements, wheels = _requirements(plan, artifacts)
        cached = _cached_path(plan, requirements, wheels, settings, cache, conda)
        if cached.exists():
            result = Lock.from_text(cached.read_text(encoding="utf-8"), str(cached))
            current.detail = f"{result.package_count} packages, resolved before"
            return result
        with tempfile.TemporaryDirectory(prefix="packsync-lock-") as tmp:
            text = _resolve(plan, requirements, wheels, store, settings, Path(tmp), conda)
        result = Lock.from_text(text)
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".partial")
        partial.write_text(text, encoding="utf-8")
        partial.replace(cached)
        forget_live_locks(cached.parent, settings.lock_tokens().values())
        current.detail = f"{result.package_count} packages resolved"
        return result


def resolved_before(
    plan: Plan,
    artifacts: Mapping[str, Artifact],
    *,
    settings: IndexSettings,
    cache: Path,
    conda: CondaLock | None = None,
) -> Lock | None:
    """The lock ``lock`` would return from its cache for the same arguments, or None: the
    answer of an earlier resolve, known without asking any index."""
    requirements, wheels = _requirements(plan, artifacts)
    cached = _cached_path(plan, requirements, wheels, settings, cache, conda)
    if not cached.exists():
        return None
    return Lock.from_text(cached.read_text(encoding="utf-8"), str(cached))


def _cached_path(plan: Plan, requirements: list[str], wheels: list[Artifact],
                 settings: IndexSettings, cache: Path, conda: CondaLock | None) -> Path:
    key = _resolve_key(plan, requirements, wheels, settings, conda)
    return cache / "locks" / f"{key}.toml"


def forget_live_locks(directory: Path, tokens: Iterable[str]) -> list[Path]:
    """Remove the resolved locks that hold one of ``tokens`` (written before locks held
    placeholders: never reused, as their key differs); the ones removed. Run after a new
    resolve only, which takes seconds anyway."""
    needles = [token.encode() for token in tokens if len(token) >= 3]
    removed = []
    for path in directory.glob("*.toml") if needles else ():
        with contextlib.suppress(OSError):
            if any(needle in path.read_bytes() for needle in needles):
                path.unlink()
                removed.append(path)
    return removed


def _requirements(
    plan: Plan, artifacts: Mapping[str, Artifact]
) -> tuple[list[str], list[Artifact]]:
    requirements: list[str] = []
    wheels: list[Artifact] = []
    for decision in plan.pip_synced():
        if decision.action == "pin":
            requirements.append(_requirement(decision.name, decision.specifier))
        else:
            artifact = artifacts[decision.key]
            wheels.append(artifact)
            requirements.append(f"{decision.name} @ {WHEELS_DIR}/{artifact.filename}")
    return requirements, wheels


def _requirement(name: str, specifier: str) -> str:
    return f"{name} {specifier}" if specifier.startswith("@") else f"{name}{specifier}"


def _resolve_key(
    plan: Plan,
    requirements: list[str],
    wheels: list[Artifact],
    settings: IndexSettings,
    conda: CondaLock | None = None,
) -> str:
    material = {
        "format": LOCK_FORMAT,
        "target": plan.target.to_dict(),
        "requirements": requirements,
        "wheels": {a.filename: a.sha256 for a in wheels},
        "indexes": settings.redacted().to_dict() | {"origins": {}},
    }
    if conda is not None:
        material["conda"] = conda.to_dict()
    if plan.accelerator_index:
        material["accelerator-index"] = plan.accelerator_index
    if settings.index_options():  # ignore-error-codes may change what uv finds
        material["index-options"] = settings.index_options()
    if settings.pins:
        material["index-pins"] = [[p.package, p.index, p.marker] for p in settings.pins]
    if plan.lock_constraints:
        material["lock-constraints"] = list(plan.lock_constraints)
    tokens = settings.lock_tokens()
    if tokens:  # the lock names them: a lock of other labels (or none) is not this one
        material["token-placeholders"] = sorted(tokens)
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _resolve(
    plan: Plan,
    requirements: list[str],
    wheels: list[Artifact],
    store: Store,
    settings: IndexSettings,
    workdir: Path,
    conda: CondaLock | None = None,
) -> str:
    settings.check_credentials()  # a resolve asks the indexes: before uv runs, not midway
    for artifact in wheels:
        store.fetch(artifact.sha256, workdir / WHEELS_DIR / artifact.filename)
    local = (workdir / WHEELS_DIR).as_uri()
    lines = {
        _name_of(r): r.replace(f"@ {WHEELS_DIR}/", f"@ {local}/") for r in requirements
    }
    pins = {d.key: d for d in plan.synced() if d.action == "pin"}
    # what the target needs and the client never installed: resolved afterwards, with deps
    additions = {key: lines.pop(key) for key, d in pins.items() if not d.local_version}
    relaxed: dict[str, Relaxation] = {}
    data = empty_document()
    for group_settings, group in _by_index(plan, lines, pins, settings):
        compiled = _compile_relaxing(plan, group, pins, group_settings, workdir, relaxed)
        if not data["packages"]:
            data = tomllib.loads(compiled)
        else:  # pins from another index, each resolved alone (--no-deps): merged by name
            packages = data["packages"] + tomllib.loads(compiled).get("packages", [])
            data["packages"] = sorted(packages, key=lambda p: canonicalize_name(p["name"]))
    if additions:
        data["packages"] = _with_additions(plan, data["packages"], additions, settings, workdir)
    local_dir = str(workdir / WHEELS_DIR)
    versions: dict[str, str] = {}
    for package in data.get("packages", []):
        versions[canonicalize_name(package["name"])] = str(package.get("version", ""))
        archive = package.get("archive", {})
        if str(archive.get("path", "")).startswith(local_dir):
            archive["path"] = f"{WHEELS_DIR}/{Path(archive['path']).name}"
    table = PacksyncTable(
        python=plan.target.python,
        target=plan.target.platform,
        uv_platform=plan.target.uv_platform,
        relaxed=tuple(
            replace(r, version=versions.get(key, "")) for key, r in sorted(relaxed.items())
        ),
        conda=conda,
    )
    # no index token in the lock: placeholders that name the index, filled in by installers
    return render(mask_document(data, settings.lock_tokens()), table)


def _by_index(
    plan: Plan, lines: Mapping[str, str], pins: Mapping[str, Decision], settings: IndexSettings
) -> list[tuple[IndexSettings, dict[str, str]]]:
    """The requirements grouped by where they may come from: the configured indexes, or
    (for a package ``[tool.uv.sources]`` pins to a named index) that index alone."""
    here = {k: str(v) for k, v in default_environment().items()}
    on_target = target_environment(plan.target, here)
    general: dict[str, str] = {}
    pinned: dict[str, dict[str, str]] = {}
    for key, line in lines.items():
        pin = next((p for p in settings.pins if p.package == key and key in pins
                    and marker_holds(p.marker, on_target)), None)
        if pin is None:
            general[key] = line
        else:
            pinned.setdefault(pin.index, {})[key] = line
    groups = [(settings, general)] if general else []
    for name, group in sorted(pinned.items()):
        alone = settings.only(name)
        if alone is None:
            names = ", ".join(sorted(group))
            raise LockError(
                f"[tool.uv.sources] takes {names} from the index {name!r}, and no index of "
                "that name is configured",
                package=names,
                hint=f"add [[tool.uv.index]] name = {name!r} with its url, or drop the source",
            )
        groups.append((alone, group))
    return groups


def _compile_relaxing(
    plan: Plan,
    lines: dict[str, str],
    pins: Mapping[str, Decision],
    settings: IndexSettings,
    workdir: Path,
    relaxed: dict[str, Relaxation],
) -> str:
    """The lock text of ``lines`` (exact pins, no dependencies), each pin the target cannot
    install relaxed to its fallbacks in turn, recorded in ``relaxed``."""
    tried: dict[str, int] = {}
    while True:
        compiled, log = _compile(plan, list(lines.values()), settings, workdir)
        if compiled is not None:
            return compiled
        failing = failing_package(log)
        decision = pins.get(failing or "")
        if decision is None:
            raise LockError(
                f"uv could not resolve the environment for {plan.target.platform} "
                f"(Python {plan.target.python})",
                package=failing or "",
                log_tail=tail(log),
                hint="the log names the package at fault; pin it differently or ignore it",
            )
        attempt = tried.get(decision.key, 0)
        if attempt >= len(decision.fallbacks):
            raise _no_distribution(plan, decision, settings, log)
        tried[decision.key] = attempt + 1
        specifier = decision.fallbacks[attempt]
        lines[decision.key] = _requirement(decision.name, specifier)
        relaxed[decision.key] = Relaxation(
            name=decision.name,
            local_version=decision.local_version,
            specifier=specifier,
            version="",
            reason=_why_unavailable(log, decision, plan),
        )


def _with_additions(
    plan: Plan,
    packages: list[dict[str, Any]],
    additions: Mapping[str, str],
    settings: IndexSettings,
    workdir: Path,
) -> list[dict[str, Any]]:
    """``packages`` plus the additions and their dependencies, resolved around the pins."""
    pinned = [f"{p['name']}=={p['version']}" for p in packages if p.get("version")]
    pinned += plan.lock_constraints  # the project lock's versions for the rest
    compiled, log = _compile(
        plan, list(additions.values()), settings, workdir, constraints=pinned
    )
    if compiled is None:
        names = ", ".join(sorted(additions))
        raise LockError(
            f"{names}, needed on {plan.target.platform} but not installed here, cannot be "
            "resolved together with the packages synced from here",
            package=names,
            log_tail=tail(log),
            hint=f"install {names} here so that they are synced as they are, or ignore them"
                 + (f"; or update the project lock {plan.project_lock}"
                    if plan.project_lock else ""),
        )
    present = {canonicalize_name(p["name"]) for p in packages}
    added = [
        p for p in tomllib.loads(compiled).get("packages", [])
        if canonicalize_name(p["name"]) not in present
    ]
    return sorted(packages + added, key=lambda p: canonicalize_name(p["name"]))


def _compile(
    plan: Plan,
    requirements: list[str],
    settings: IndexSettings,
    workdir: Path,
    *,
    constraints: list[str] | None = None,
) -> tuple[str | None, str]:
    """One ``uv pip compile`` for the target: the lock text, or None and uv's log.

    Without ``constraints`` exactly the requirements are locked (``--no-deps``); with
    them, dependencies are resolved too, held to the constraints.
    """
    (workdir / "requirements.txt").write_text("\n".join(requirements) + "\n", encoding="utf-8")
    output = workdir / "pylock.toml"
    output.unlink(missing_ok=True)
    scope = ["--no-deps"]
    if constraints is not None:
        (workdir / "constraints.txt").write_text("\n".join(constraints) + "\n", encoding="utf-8")
        scope = ["--constraint", "constraints.txt"]
    result = run_uv(
        [
            "pip", "compile", "requirements.txt", *scope, "--quiet",
            "--format", "pylock.toml", "--output-file", str(output),
            "--python-platform", plan.target.uv_platform,
            "--python-version", plan.target.python,
        ],
        extra_env=_uv_environment(plan, settings),
        cwd=str(workdir),
    )
    if result.returncode != 0 or not output.exists():
        uv_env = _uv_environment(plan, settings)
        refused = explain_index_failure(
            result.stdout, uv_env, LockError, action="resolving the environment", kinds=ACCESS
        )
        if refused is not None:
            raise refused
        return None, redact_text(result.stdout, secrets_in(uv_env))
    return output.read_text(encoding="utf-8"), result.stdout


def _uv_environment(plan: Plan, settings: IndexSettings) -> dict[str, str]:
    """uv's index variables for the plan: the configured indexes, and the index of the
    workers' accelerator variants when the plan switched to them."""
    env = settings.uv_environment()
    configured = {i.plain_url.rstrip("/") for i in settings.indexes}
    if plan.accelerator_index and plan.accelerator_index.rstrip("/") not in configured:
        env["UV_INDEX"] = f"{env.get('UV_INDEX', '')} {plan.accelerator_index}".strip()
    return env


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _name_of(requirement: str) -> str:
    found = _NAME.match(requirement)
    return canonicalize_name(found.group(0) if found else requirement)


def _why_unavailable(log: str, decision: Decision, plan: Plan) -> str:
    exact = f"{decision.name} {decision.local_version}"
    where = f"{plan.target.platform} (Python {plan.target.python})"
    return {
        "no-wheel": f"{exact} has no wheel for {where} and no sdist",
        "yanked": f"{exact} was yanked from the index",
        "python": f"{exact} does not support Python {plan.target.python}",
        "no-version": f"{exact} is not on the configured indexes",
        "unknown": f"{exact} cannot be installed on {where}",
    }[why_unavailable(log)]


def _no_distribution(
    plan: Plan, decision: Decision, settings: IndexSettings, log: str
) -> LockError:
    config = settings.redacted()
    searched = ", ".join([config.index_url, *config.extra_index_urls, *config.find_links,
                          *filter(None, [plan.accelerator_index])])
    tried = ", ".join(decision.fallbacks)
    return LockError(
        f"{_why_unavailable(log, decision, plan)}"
        + (f", and nothing matches {tried} either" if tried else "")
        + f"; indexes searched: {searched}",
        package=decision.name,
        log_tail=tail(log),
        hint=(
            f"leave it out with ignore=[{decision.name!r}] if the workers do not need it, "
            "or install a version here that exists for the workers' platform"
        ),
    )
