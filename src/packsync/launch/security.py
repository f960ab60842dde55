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


def tls_options(security: Security | None) -> dict[str, Any]:
    """What the scheduler and each worker are given to listen and connect with it."""
    if security is None:
        return {}
    if security.require_encryption:
        return {"security": security, "protocol": "tls"}
    return {"security": security}


def inherited_config() -> str:
    """The client's Dask configuration as Dask processes inherit it
    (``DASK_INTERNAL_INHERIT_CONFIG``), without what only the client needs."""
    serialized: str = dask.config.serialize(config.inheritable())
    return serialized
