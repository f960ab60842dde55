"""Which machines a cluster runs on, and how to reach each one over SSH."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_HOST_CACHE = "~/.cache/packsync"


@dataclass(frozen=True, kw_only=True, slots=True)
class HostSpec:
    """One SSH host: its address, the interpreter to build from and its cache directory."""

    address: str
    port: int | None = None
    username: str | None = None
    python: str | None = None  # default: python<major.minor> of the lock, else python3
    cache_dir: str = DEFAULT_HOST_CACHE
    connect_options: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        """How errors and progress name the host: ``user@address:port`` as given."""
        user = f"{self.username}@" if self.username else ""
        port = f":{self.port}" if self.port else ""
        return f"{user}{self.address}{port}"

    def ssh_options(self) -> dict[str, Any]:
        options = dict(self.connect_options)
        if self.port is not None:
            options.setdefault("port", self.port)
        if self.username is not None:
            options.setdefault("username", self.username)
        return options


HostLike = str | HostSpec | Mapping[str, Any]


def parse_hosts(
    hosts: Sequence[HostLike],
    *,
    connect_options: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    python: str | Sequence[str | None] | None = None,
    cache_dir: str | None = None,
) -> tuple[HostSpec, ...]:
    """Host specs from ``"node"``, ``"user@node:port"``, dicts or ``HostSpec``s.

    ``connect_options`` and ``python`` are one value for every host or one per host,
    as in Dask's ``SSHCluster``; per-host dict keys win over them.
    """
    if isinstance(hosts, str):
        hosts = [hosts]
    count = len(hosts)
    options = _per_host(connect_options, count, "connect_options")
    pythons = _per_host(python, count, "python")
    specs = []
    for host, opts, interpreter in zip(hosts, options, pythons, strict=True):
        if isinstance(host, HostSpec):
            specs.append(host)
            continue
        fields: dict[str, Any] = dict(_parse_address(host)) if isinstance(host, str) else dict(host)
        if "address" not in fields:
            raise ValueError(f"host {host!r} has no address")
        merged = {**(opts or {}), **dict(fields.pop("connect_options", {}) or {})}
        specs.append(HostSpec(
            address=str(fields.pop("address")),
            port=int(fields["port"]) if fields.get("port") else None,
            username=fields.get("username") or None,
            python=fields.get("python") or interpreter,
            cache_dir=fields.get("cache_dir") or cache_dir or DEFAULT_HOST_CACHE,
            connect_options=merged,
        ))
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"hosts named twice: {', '.join(duplicates)} (use n_workers per host)")
    return tuple(specs)


def _parse_address(text: str) -> dict[str, Any]:
    user, _, rest = text.rpartition("@")
    address, port = rest, None
    if rest.count(":") == 1:
        address, _, number = rest.partition(":")
        port = int(number)
    return {"address": address, "port": port, "username": user or None}


def _per_host(value: Any, count: int, what: str) -> list[Any]:
    if value is None or isinstance(value, (str, Mapping)):
        return [value] * count
    values = list(value)
    if len(values) != count:
        raise ValueError(f"{what} has {len(values)} entries for {count} hosts")
    return values
