"""Host side: the conda part of a lock installed into an environment prefix with py-rattler.

Packages come from the lock's exact URLs, checked against their SHA-256, through a
package cache shared by every environment on the host (``<cache>/conda-pkgs``: a package
is downloaded and extracted once, then hard-linked). Link scripts are not run. rattler
sees only redacted URLs; the live channel URLs and the credentials of the user's conda
tools (``conda.auth``) are handed in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from packsync.conda.auth import channel_access, masked, refusal
from packsync.conda.locked import CondaLock, LockedCondaPackage
from packsync.conda.runner import client, require_rattler, run
from packsync.errors import MaterializeError

logger = logging.getLogger(__name__)

PACKAGE_CACHE = "conda-pkgs"


def install_conda(
    conda: CondaLock,
    prefix: Path,
    *,
    cache: Path,
    channels: Mapping[str, str],
    digest: str = "",
) -> None:
    """Link every package of ``conda`` into ``prefix`` (created if missing)."""
    rattler = require_rattler(MaterializeError)
    records = [_record(rattler, p) for p in conda.packages]
    access = channel_access(channels)
    try:
        run(rattler.install(
            records,
            prefix,
            cache_dir=cache / PACKAGE_CACHE,
            show_progress=False,
            execute_link_scripts=False,
            client=client(access),
        ))
    except Exception as error:  # rattler raises its own exception types
        message = masked(str(error), access)
        refused = refusal(MaterializeError, message, access, digest=digest, path=str(prefix),
                          action=f"installing {len(records)} conda packages failed")
        if refused is not None:
            raise refused from None
        raise MaterializeError(
            f"installing {len(records)} conda packages failed: {message}",
            digest=digest,
            path=str(prefix),
            hint="check that this host reaches the channels "
                 f"({', '.join(conda.channels)}) with the same credentials as the client",
        ) from None


def _record(rattler: Any, package: LockedCondaPackage) -> Any:
    noarch: Any = package.noarch or None
    record = rattler.PackageRecord(
        name=package.name,
        version=package.version,
        build=rattler.BuildString(package.build),
        build_number=package.build_number,
        subdir=package.subdir,
        noarch=rattler.NoArchType(noarch) if noarch else None,
        depends=list(package.depends),
        constrains=list(package.constrains),
        sha256=bytes.fromhex(package.sha256) if package.sha256 else None,
        md5=bytes.fromhex(package.md5) if package.md5 else None,
        size=package.size or None,
        python_site_packages_path=package.python_site_packages_path or None,
    )
    return rattler.RepoDataRecord(
        record, file_name=package.file_name, url=package.url, channel=package.channel
    )
