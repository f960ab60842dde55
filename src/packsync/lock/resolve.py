"""Plan + local wheels -> a PEP 751 ``pylock.toml`` resolved by uv for the target.

The lock names the environment: its SHA-256 is the ``EnvDigest`` every host caches
under. Local wheels are referenced as ``wheels/<file>`` beside the lock, with their
hashes, so the lock installs anywhere those wheels sit next to it, with or without
packsync. Resolving is skipped when the same plan was resolved before.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from packaging.pylock import Pylock, PylockValidationError
from packaging.utils import canonicalize_name

from packsync.conda.locked import CondaLock
from packsync.errors import LockError, tail
from packsync.lock.index_failures import ACCESS
from packsync.lock.index_failures import explain as explain_index_failure
from packsync.model import Artifact, Decision, Plan, Relaxation
from packsync.progress import NullReporter, Reporter, stage
from packsync.redact import redact_text, secrets_in
from packsync.scan.indexes import IndexSettings
from packsync.store import Store
from packsync.uvtool import run_uv

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

LOCK_FORMAT = 1
WHEELS_DIR = "wheels"


@dataclass(frozen=True, kw_only=True, slots=True)
class LocalWheel:
    """A wheel of local code the lock refers to, fetched from the store by hash."""

    filename: str
    sha256: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Lock:
    """A canonical ``pylock.toml`` and the digest that names its environment."""

    text: str
    digest: str
    python: str
    local_wheels: tuple[LocalWheel, ...]
    versions: Mapping[str, str]  # canonical name -> version the target gets
    relaxed: tuple[Relaxation, ...] = ()
    conda: CondaLock | None = None  # [tool.packsync.conda]: installed before the pip part

    @property
    def package_count(self) -> int:
        return len(self.versions)

    @property
    def env_id(self) -> str:
        """The environment's directory name: 128 bits of the digest keep paths short."""
        return self.digest[:32]

    @classmethod
    def from_text(cls, text: str, origin: str = "the lock") -> Lock:
        """Parse and validate a lock; anything foreign or damaged is a ``LockError``."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise LockError(
                f"{origin} is not valid TOML: {error}",
                path=origin,
                hint="write a new lock with `packsync lock -o pylock.toml`",
            ) from error
        try:
            Pylock.from_dict(data)
        except PylockValidationError as error:
            raise LockError(
                f"{origin} is not a valid PEP 751 lock: {error}",
                path=origin,
                hint="write a new lock with `packsync lock -o pylock.toml`",
            ) from error
        meta = data.get("tool", {}).get("packsync", {})
        if meta.get("format") != LOCK_FORMAT or not meta.get("python"):
            raise LockError(
                f"{origin} was not written by packsync (no [tool.packsync] table of format "
                f"{LOCK_FORMAT})",
                path=origin,
                hint="write the lock with `packsync lock -o pylock.toml`",
            )
        return cls(
            text=text,
            digest=hashlib.sha256(text.encode()).hexdigest(),
            python=meta["python"],
            local_wheels=_local_wheels(data, origin),
            versions={
                canonicalize_name(p["name"]): str(p.get("version", ""))
                for p in data.get("packages", [])
            },
            relaxed=tuple(Relaxation.from_dict(r) for r in meta.get("relaxed", ())),
            conda=CondaLock.from_dict(meta["conda"], origin) if meta.get("conda") else None,
        )

    def write(self, path: Path) -> None:
        path.write_text(self.text, encoding="utf-8")


def _local_wheels(data: Mapping[str, Any], origin: str) -> tuple[LocalWheel, ...]:
    wheels = []
    for package in data.get("packages", []):
        path = package.get("archive", {}).get("path")
        if path is None:
            continue
        directory, _, filename = str(path).partition("/")
        sha256 = package["archive"].get("hashes", {}).get("sha256", "")
        nested = "/" in filename or directory != WHEELS_DIR
        if nested or not filename.endswith(".whl") or not sha256:
            raise LockError(
                f"{origin} refers to a local file {path!r} that packsync did not put there",
                path=origin,
                package=package.get("name", ""),
                hint="write the lock with `packsync lock`",
            )
        wheels.append(LocalWheel(filename=filename, sha256=sha256))
    return tuple(wheels)


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
        key = _resolve_key(plan, requirements, wheels, settings, conda)
        cached = cache / "locks" / f"{key}.toml"
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
        current.detail = f"{result.package_count} packages resolved"
        return result


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
    tried: dict[str, int] = {}
    output = ""
    while lines:
        compiled, log = _compile(plan, list(lines.values()), settings, workdir)
        if compiled is not None:
            output = compiled
            break
        failing = _failing_package(log)
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

    data = tomllib.loads(output) if lines else _empty_lock()
    if additions:
        data["packages"] = _with_additions(plan, data["packages"], additions, settings, workdir)
    local_dir = str(workdir / WHEELS_DIR)
    versions: dict[str, str] = {}
    for package in data.get("packages", []):
        versions[canonicalize_name(package["name"])] = str(package.get("version", ""))
        archive = package.get("archive", {})
        if str(archive.get("path", "")).startswith(local_dir):
            archive["path"] = f"{WHEELS_DIR}/{Path(archive['path']).name}"
    meta: dict[str, Any] = {
        "format": LOCK_FORMAT,
        "python": plan.target.python,
        "target": plan.target.platform,
        "uv-platform": plan.target.uv_platform,
    }
    if relaxed:
        meta["relaxed"] = [
            replace(r, version=versions.get(key, "")).to_dict()
            for key, r in sorted(relaxed.items())
        ]
    if conda is not None:
        meta["conda"] = conda.to_dict()
    data["tool"] = {"packsync": meta}
    import tomli_w  # a new resolve only: a relaunch reads the lock resolved before

    return tomli_w.dumps(data)


def _with_additions(
    plan: Plan,
    packages: list[dict[str, Any]],
    additions: Mapping[str, str],
    settings: IndexSettings,
    workdir: Path,
) -> list[dict[str, Any]]:
    """``packages`` plus the additions and their dependencies, resolved around the pins."""
    pinned = [f"{p['name']}=={p['version']}" for p in packages if p.get("version")]
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
            hint=f"install {names} here so that they are synced as they are, or ignore them",
        )
    present = {canonicalize_name(p["name"]) for p in packages}
    added = [
        p for p in tomllib.loads(compiled).get("packages", [])
        if canonicalize_name(p["name"]) not in present
    ]
    return sorted(packages + added, key=lambda p: canonicalize_name(p["name"]))


def _empty_lock() -> dict[str, Any]:
    """A lock with no pip package (conda provides them all)."""
    return {"lock-version": "1.0", "created-by": "packsync", "packages": []}


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
        extra_env=settings.uv_environment(),
        cwd=str(workdir),
    )
    if result.returncode != 0 or not output.exists():
        uv_env = settings.uv_environment()
        refused = explain_index_failure(
            result.stdout, uv_env, LockError, action="resolving the environment", kinds=ACCESS
        )
        if refused is not None:
            raise refused
        return None, redact_text(result.stdout, secrets_in(uv_env))
    return output.read_text(encoding="utf-8"), result.stdout


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_YOU_REQUIRE = re.compile(r"you require ([A-Za-z0-9][A-Za-z0-9._-]*)")


def _name_of(requirement: str) -> str:
    found = _NAME.match(requirement)
    return canonicalize_name(found.group(0) if found else requirement)


def _failing_package(log: str) -> str | None:
    """The package uv's "No solution found" names as the one required and impossible."""
    found = _YOU_REQUIRE.search(log)
    return canonicalize_name(found.group(1)) if found else None


def _why_unavailable(log: str, decision: Decision, plan: Plan) -> str:
    exact = f"{decision.name} {decision.local_version}"
    where = f"{plan.target.platform} (Python {plan.target.python})"
    if "no wheels with a matching platform tag" in log or "no wheels with a matching" in log:
        return f"{exact} has no wheel for {where} and no sdist"
    if "yanked" in log:
        return f"{exact} was yanked from the index"
    if "Python" in log and "depends on Python" in log:
        return f"{exact} does not support Python {plan.target.python}"
    if "there is no version of" in log:
        return f"{exact} is not on the configured indexes"
    return f"{exact} cannot be installed on {where}"


def _no_distribution(
    plan: Plan, decision: Decision, settings: IndexSettings, log: str
) -> LockError:
    config = settings.redacted()
    searched = ", ".join([config.index_url, *config.extra_index_urls, *config.find_links])
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
