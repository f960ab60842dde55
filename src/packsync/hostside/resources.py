"""What a host is and gives its processes: its interpreter and platform, and memory and
cores, counted as Dask's workers count them.

A worker started with ``memory_limit="auto"`` takes the machine's memory times its share
of the cores; the client needs that number before any worker runs, to ``scale(memory=)``
and ``adapt(maximum_memory=)`` by it, so the host's probe says both. Memory is the
smallest of the physical memory, a cgroup's limit and ``RLIMIT_RSS``; cores the fewest
of the CPUs this process may run on and a cgroup's CPU quota.

Standard library only: this runs on hosts.
"""

from __future__ import annotations

import math
import os
import platform
import sys

_CGROUP_MEMORY = ("/sys/fs/cgroup/memory.max",  # cgroup v2
                  "/sys/fs/cgroup/memory/memory.limit_in_bytes")  # v1


def interpreter() -> dict[str, str]:
    """The Python running this and the platform it runs on, as the client compares them."""
    libc, version = platform.libc_ver()
    return {
        "python_version": platform.python_version(),
        "executable": sys.executable,
        "base_executable": getattr(sys, "_base_executable", "") or sys.executable,
        "platform": f"{platform.system()}-{platform.machine()}",
        "libc": f"{libc} {version}".strip(),
        "home": os.path.expanduser("~"),
    }


def memory() -> int:
    """Bytes of memory this machine's processes may use; 0 when it cannot be told."""
    found: list[int] = []
    try:
        found.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        pass
    for path in _CGROUP_MEMORY:
        text = _read(path)
        if text.isdigit():
            found.append(int(text))
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_RSS)[0]
        if soft != resource.RLIM_INFINITY:
            found.append(soft)
    except (ImportError, ValueError, OSError):
        pass
    positive = [amount for amount in found if amount > 0]
    return min(positive) if positive else 0


def cores() -> int:
    """The cores this process may run on (a CPU quota counted up to whole cores)."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    quota = _read("/sys/fs/cgroup/cpu.max").split()  # v2: "max 100000" or "200000 100000"
    if len(quota) != 2:  # v1
        quota = [_read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
                 _read("/sys/fs/cgroup/cpu/cpu.cfs_period_us")]
    try:
        limit, period = int(quota[0]), int(quota[1])
    except ValueError:
        return count
    if limit > 0 and period > 0:
        count = min(count, math.ceil(limit / period))
    return max(1, count)


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii") as handle:
            return handle.read().strip()
    except (OSError, ValueError):
        return ""
