"""What a ``Cluster`` synced, at a glance: the notebook view shown above Dask's own widget.

The environment (its digest, Python, platform, whether the cache had it), the synced
distributions counted by install kind, the pins the target could not honour, what
checking the workers found, and the live code version with how saves reach it.
"""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass

from packsync.launch.verify import Verification
from packsync.model import Relaxation
from packsync.pipeline import Prepared
from packsync.sources import SOURCE_KINDS

_MAX_DIFFERENCES = 20


@dataclass(frozen=True, kw_only=True, slots=True)
class SyncSummary:
    """What one cluster synced and found."""

    digest: str
    python: str
    platform: str
    packages: int  # in the lock
    kinds: tuple[tuple[str, int], ...]  # synced distributions by install kind
    ignored: int
    relaxed: tuple[Relaxation, ...]
    environment: str
    reused: bool  # the cache had the environment
    verify: bool
    verification: Verification
    code_id: str
    code_files: int
    watch: str  # how saves are noticed; "" when only sync() sends code

    def to_html(self) -> str:
        rows = [
            ("Environment", self._environment_html()),
            ("Synced, by install kind", self._kinds_html()),
            ("Relaxed pins", self._relaxed_html()),
            ("Worker verification", self._verification_html()),
            ("Live code", self._code_html()),
        ]
        body = "".join(
            f'<tr><th style="text-align:left;vertical-align:top;white-space:nowrap">{name}</th>'
            f'<td style="text-align:left">{value}</td></tr>'
            for name, value in rows
        )
        return _box(f"<table>{body}</table>")

    def _environment_html(self) -> str:
        where = "reused from the cache" if self.reused else "built for this launch"
        return (f'<code title="{_e(self.digest)}">{_e(self.digest[:12])}</code> · '
                f"Python {_e(self.python)} · {_e(self.platform)} · "
                f"{self.packages} packages · {where} "
                f'<span style="opacity:0.7">({_e(self.environment)})</span>')

    def _kinds_html(self) -> str:
        counts = " · ".join(f"{_e(kind)} {count}" for kind, count in self.kinds) or "nothing"
        return counts + (f" (not synced: {self.ignored})" if self.ignored else "")

    def _relaxed_html(self) -> str:
        if not self.relaxed:
            return "none: every version is the client's"
        items = "".join(
            f"<li>{_e(r.name)} {_e(r.local_version)} → {_e(r.version)} "
            f"({_e(r.specifier)}): {_e(r.reason)}</li>"
            for r in self.relaxed
        )
        return f'<ul style="margin:0">{items}</ul>'

    def _verification_html(self) -> str:
        if not self.verify:
            return "off (verify=False)"
        found = self.verification
        if not found.verified:
            return "no worker checked yet"
        checked = f"{len(found.verified)} worker{'s' if len(found.verified) != 1 else ''}"
        notices = sum(d.severity == "notice" for d in found.differences)
        if found.ok:
            extra = f", {notices} notice{'s' if notices != 1 else ''}" if notices else ""
            verb = "matches" if len(found.verified) == 1 else "match"
            return f"✓ {checked} {verb} the lock{extra}"
        retired = f"; retired: {_e(', '.join(found.retired))}" if found.retired else ""
        shown = [d for d in found.differences if d.severity != "notice"][:_MAX_DIFFERENCES]
        items = "".join(f"<li>{_e(d.severity)}: {_e(d.describe())}</li>" for d in shown)
        return f'✗ {checked} checked{retired}<ul style="margin:0">{items}</ul>'

    def _code_html(self) -> str:
        how = f"synced on save ({_e(self.watch)})" if self.watch else "synced by sync()"
        files = f"{self.code_files} file{'s' if self.code_files != 1 else ''}"
        return f"version <code>{_e(self.code_id[:12])}</code> · {files} · {how}"


def summarize(
    prepared: Prepared,
    *,
    verify: bool,
    verification: Verification,
    code_id: str,
    code_files: int,
    watch: str,
) -> SyncSummary:
    locked = prepared.locked
    synced: Counter[str] = Counter(d.source.kind for d in locked.plan.synced())
    kinds = tuple((kind, synced[kind]) for kind in SOURCE_KINDS if synced[kind])
    kinds += tuple(sorted((k, n) for k, n in synced.items() if k not in SOURCE_KINDS))
    return SyncSummary(
        digest=locked.lock.digest,
        python=locked.lock.python,
        platform=locked.plan.target.platform,
        packages=locked.lock.package_count,
        kinds=kinds,
        ignored=len(locked.plan.decisions) - len(locked.plan.synced()),
        relaxed=locked.lock.relaxed,
        environment=str(prepared.environment.path),
        reused=prepared.environment.cache_hit,
        verify=verify,
        verification=verification,
        code_id=code_id,
        code_files=code_files,
        watch=watch,
    )


def not_ready_html() -> str:
    return _box("<p>The environment is not ready yet.</p>")


def _box(inner: str) -> str:
    return ('<div class="packsync-summary" style="margin-bottom:1em">'
            f'<h3 style="margin-bottom:0.3em">packsync</h3>{inner}</div>')


def _e(text: str) -> str:
    return html.escape(text, quote=True)
