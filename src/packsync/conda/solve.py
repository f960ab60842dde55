"""The conda part of a plan solved for the workers' subdir into a hash-pinned list.

rattler's solver (via py-rattler) runs once, on the client, before launch; the hosts
install exactly the files it picked. The channels are those of the client's records,
in their order; only redacted URLs reach rattler (see ``runner.client``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from packsync.conda.auth import channel_access, masked, refusal
from packsync.conda.channels import redact_channel
from packsync.conda.locked import CondaLock, LockedCondaPackage
from packsync.conda.model import CondaPlan
from packsync.conda.runner import client, require_rattler, run
from packsync.errors import LockError
from packsync.model import Target

logger = logging.getLogger(__name__)

ARCHSPEC = {"linux-64": "x86_64", "linux-aarch64": "aarch64"}


def solve_conda(
    plan: CondaPlan,
    target: Target,
    *,
    channels: Mapping[str, str],
    cache: Path,
    same_platform: bool,
) -> CondaLock:
    """Solve the plan's specs from its channels (``channels`` maps redacted -> live URL).

    An identical request (specs, channels, subdir, system) solved before is reused from
    ``<cache>/locks``: relaunching an unchanged environment asks no channel anything.
    """
    specs = list(plan.specs())
    system = _system(target, same_platform)
    request: dict[str, object] = {"format": 1, "subdir": plan.subdir,
                                  "channels": list(plan.channels), "specs": specs,
                                  "system": system}
    if plan.constraints:
        request["constraints"] = list(plan.constraints)
    key = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()
    cached = cache / "locks" / f"conda-{key}.json"
    if cached.exists():
        return CondaLock.from_dict(json.loads(cached.read_text(encoding="utf-8")), str(cached))
    solved = _solve(plan, specs, system, channels, cache)
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(".partial")
    partial.write_text(json.dumps(solved.to_dict(), sort_keys=True), encoding="utf-8")
    partial.replace(cached)
    return solved


def _solve(
    plan: CondaPlan,
    specs: list[str],
    system: Mapping[str, str],
    channels: Mapping[str, str],
    cache: Path,
) -> CondaLock:
    rattler = require_rattler(LockError)
    access = channel_access(channels)
    http = client(access)
    gateway = rattler.Gateway(cache_dir=str(cache / "conda-repodata"), client=http)
    virtual = [
        rattler.GenericVirtualPackage(
            rattler.PackageName(name),
            rattler.Version(version),
            rattler.BuildString(ARCHSPEC.get(plan.subdir, "0") if name == "__archspec" else "0"),
        )
        for name, version in system.items()
    ]
    try:
        records = run(rattler.solve(
            list(plan.channels), specs, gateway=gateway,
            platforms=[plan.subdir, "noarch"], virtual_packages=virtual,
            constraints=list(plan.constraints),
        ))
    except Exception as error:  # rattler raises its own exception types
        message = masked(str(error), access)
        refused = refusal(LockError, message, access,
                          action=f"the conda packages cannot be solved for {plan.subdir}")
        if refused is not None:
            raise refused from None
        pinned = [*specs, *plan.constraints]
        at_fault = _names_in(str(error), pinned)
        locked = [s.split()[0] for s in pinned if "[sha256=" in s and s.split()[0] in at_fault]
        raise LockError(
            f"the conda packages cannot be solved for {plan.subdir}: {message}",
            package=", ".join(at_fault),
            hint="the message names the package at fault; check that the channels "
                 f"({', '.join(plan.channels)}) still serve it for {plan.subdir}"
                 + (f"; the project lock pins the file of {', '.join(locked)}: lock the "
                    "project again if the channels no longer serve it" if locked else ""),
        ) from None
    packages = sorted((_locked(r) for r in records), key=lambda p: p.name)
    return CondaLock(subdir=plan.subdir, channels=plan.channels, packages=tuple(packages))


def _locked(record: Any) -> LockedCondaPackage:
    url = redact_channel(str(record.url))
    channel = url.rsplit("/", 2)[0]
    noarch = record.noarch
    kind = "python" if noarch.python else "generic" if noarch.generic else ""
    return LockedCondaPackage(
        name=record.name.normalized,
        version=str(record.version),
        build=str(record.build),
        build_number=int(record.build_number),
        subdir=str(record.subdir),
        channel=channel,
        url=url,
        file_name=str(record.file_name),
        sha256=record.sha256.hex() if record.sha256 else "",
        md5=record.md5.hex() if record.md5 else "",
        size=int(record.size or 0),
        noarch=kind,
        depends=tuple(record.depends),
        constrains=tuple(record.constrains),
        python_site_packages_path=record.python_site_packages_path or "",
    )


def _system(target: Target, same: bool) -> dict[str, str]:
    """The virtual packages of the workers' system: Linux, its glibc and CPU family."""
    glibc = target.libc.removeprefix("manylinux_").replace("_", ".") or "2.17"
    kernel = platform.release().split("-")[0] if same else "5.10"
    return {
        "__unix": "0",
        "__linux": kernel if kernel[:1].isdigit() else "5.10",
        "__glibc": glibc,
        "__archspec": "1",
    }


def _names_in(message: str, specs: list[str]) -> list[str]:
    """The packages of ``specs`` that ``message`` names as words, or in a file name
    (``python`` is not named by ``python_abi``, ``libpython`` or ``python-dateutil``)."""
    names = [spec.split()[0] for spec in specs]
    return [n for n in names
            if re.search(rf"(?<![\w.-]){re.escape(n)}(?=$|[^\w-]|-\d)", message)]
