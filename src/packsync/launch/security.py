"""Who may connect to a cluster: TLS with credentials made for that cluster alone.

A Dask scheduler runs whatever a connected client asks, so an open port is code
execution for anyone who reaches it: every user of a shared login node (loopback is
theirs too) and, with SSH hosts, every peer on the network. By default each cluster
gets a key and a self-signed certificate of its own, made at launch
(``distributed.Security.temporary``): the client, the scheduler and every worker
present it and accept only it, so a peer without it is refused at the TLS handshake.
The credentials live in memory: workers receive them in their pickled spec on stdin
(``packsync.launch.processes``), SSH hosts over the SSH channel; never on a command
line or in a file of their own (Dask writes them for an instant into a private
temporary directory to load them into its SSL context).

Workers get no credential they do not need: the Dask configuration they inherit
(``inherited_config``) is the client's without ``packsync.store-options``, which may
hold the store's keys (only the client writes to the store).

``Cluster(security=...)`` takes a ``distributed.Security`` of the user's instead,
``True`` (a temporary one, as ``LocalCluster``) or ``False`` (no TLS); ``None`` follows
the ``packsync.tls`` setting (default true).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import dask.config
from distributed.security import Security

from packsync import config
from packsync.errors import LaunchError


def cluster_security(security: Security | bool | None) -> Security | None:
    """The ``Security`` of a cluster, or None for plain TCP."""
    if security is None:
        security = config.tls()
    if security is False:
        return None
    if security is True:
        try:
            made: Security = Security.temporary()  # type: ignore[no-untyped-call]
            return made
        except ImportError as error:
            raise LaunchError(
                f"TLS credentials for the cluster cannot be made: {error}",
                package="cryptography",
                hint="install cryptography, or set packsync.tls: false (no TLS: anyone "
                     "who reaches the scheduler can run code on the cluster)",
            ) from None
    if not isinstance(security, Security):
        raise TypeError(f"security={security!r}: give a distributed.Security, True or False")
    return security


def tls_options(security: Security | None, *, remote: bool = False) -> dict[str, Any]:
    """What the scheduler and each worker are given to listen and connect with it
    (``remote``: processes on SSH hosts, which do not have the client's files)."""
    if security is None:
        return {}
    given = in_memory(security) if remote else security
    if security.require_encryption:
        return {"security": given, "protocol": "tls"}
    return {"security": given}


# The fields of a ``Security`` that name a file or hold its PEM contents.
PEM_FIELDS = ("tls_ca_file", "tls_client_key", "tls_client_cert", "tls_scheduler_key",
              "tls_scheduler_cert", "tls_worker_key", "tls_worker_cert")


def in_memory(security: Security) -> Security:
    """``security`` with the files it names read into it (Dask takes PEM contents in
    their place), so that it travels to hosts over the SSH channel with its spec."""
    copied = copy.copy(security)
    for name in PEM_FIELDS:
        value = getattr(security, name, None)
        if isinstance(value, str) and value and "\n" not in value:
            path = Path(value).expanduser()
            try:
                setattr(copied, name, path.read_text(encoding="utf-8"))
            except OSError as error:
                raise LaunchError(
                    f"the TLS file of security.{name} cannot be read: {error}",
                    path=str(path), hint="give a distributed.Security whose files exist here",
                ) from None
    return copied


def inherited_config() -> str:
    """The client's Dask configuration as Dask processes inherit it
    (``DASK_INTERNAL_INHERIT_CONFIG``), without what only the client needs."""
    serialized: str = dask.config.serialize(config.inheritable())
    return serialized
