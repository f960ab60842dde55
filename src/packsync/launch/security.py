"""Who may connect to a cluster: TLS with credentials made for that cluster alone.

A Dask scheduler runs whatever a connected client asks, so an open port is code
execution for anyone who reaches it: every user of a shared login node (loopback is
theirs too) and, with SSH hosts, every peer on the network. By default each cluster
gets a key and a self-signed certificate of its own, made at launch (``temporary``, as
``distributed.Security.temporary`` makes them): the client, the scheduler and every worker
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
import datetime
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
            return temporary()
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


def temporary() -> Security:
    """Credentials for one cluster, as ``Security.temporary`` makes them, but with a key
    on an elliptic curve (P-256) instead of RSA-2048: made in about a millisecond instead
    of 0.1 s, which every launch waited for, and quicker to sign with at each handshake."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dask-internal")])
    now = datetime.datetime.now(tz=datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("dask-internal")]),
                       critical=False)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # hosts' clocks may lag
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    return Security(  # type: ignore[no-untyped-call]
        require_encryption=True, tls_ca_file=cert_pem,
        tls_client_key=key_pem, tls_client_cert=cert_pem,
        tls_scheduler_key=key_pem, tls_scheduler_cert=cert_pem,
        tls_worker_key=key_pem, tls_worker_cert=cert_pem,
    )


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
