"""Installed environments to build local code from (a uv venv, scanned into a Snapshot), the
plans that build them and what the built wheels hold."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

from packsync.model import Decision, Plan, Snapshot, Target
from packsync.plan.targets import default_target
from packsync.progress import NullReporter
from packsync.scan import current_interpreter
from packsync.scan.dists import scan_dists
from packsync.store import Store

from .venvs import uv_install, uv_venv


class Venv:
    """A bare virtual environment that local projects are installed into."""

    def __init__(self, path: Path) -> None:
        self.path = path
        uv_venv(path)
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        self.site = path / "lib" / version / "site-packages"

    def install(self, *args: str) -> None:
        uv_install(self.path / "bin" / "python", *args, capture=True)

    def snapshot(self) -> Snapshot:
        return Snapshot(interpreter=current_interpreter(), environment={}, prefix=str(self.path),
                        dists=scan_dists([str(self.site)]))


def plan_for(snapshot: Snapshot, *names: str, target: Target | None = None) -> Plan:
    """A plan that builds (or uploads) the named distributions, as ``plan()`` would."""
    decisions = []
    for name in names:
        dist = snapshot.get(name)
        assert dist is not None, f"{name} is not installed"
        action = "upload" if dist.source.to_dict().get("url", "").endswith(".whl") else "build"
        decisions.append(Decision(name=dist.name, local_version=dist.version, action=action,
                                  specifier=f"=={dist.version}", reason="test",
                                  source=dist.source))
    return Plan(target=target or default_target(snapshot), decisions=tuple(decisions))


def wheel_text(store: Store, sha256: str, member_suffix: str, tmp: Path) -> str:
    """The text of the member ending in ``member_suffix`` of a stored wheel."""
    path = tmp / f"{sha256}.whl"
    store.fetch(sha256, path)
    with zipfile.ZipFile(path) as wheel:
        names = [n for n in wheel.namelist() if n.endswith(member_suffix)]
        assert len(names) == 1, (member_suffix, wheel.namelist())
        return wheel.read(names[0]).decode()


class Steps(NullReporter):
    """Records the build steps the reporter is told about."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def step(self, stage: str, message: str) -> None:
        self.messages.append(message)
