"""The platform workers run on: named by the user, or like the client when it can be."""

from __future__ import annotations

from packsync.errors import PlanError
from packsync.model import Snapshot, Target

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
