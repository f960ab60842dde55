"""Working-directory code on a machine: one version a directory, reached through a link.

``<cache>/code/<code_id>/`` holds one version of the code bundle, with a manifest of its
files and the ready marker written last; each cluster's processes import through their
own link in ``<cache>/code/live/`` (``$PACKSYNC_CODE_LINK``), which live updates swap.
The client unpacks bundles this way for its own processes, and hosts for theirs.

A worker command's job cannot remove its link when its worker ends (it ``exec``s the
worker), and other jobs of the cluster on the machine may share it: each holds the
link's lease (``<link>.lease``, as environments have theirs) across its ``exec``
(``held_link``), and the collector removes a link whose lease nobody holds
(``lifecycle``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile

from packsync.hostside import layout, lease


def unpack_code(cache: str, code_id: str, sha256: str, archive: str) -> str:
    """The bundle at ``archive`` (already verified) unpacked once into its version directory."""
    target = layout.code_dir(cache, code_id)
    if layout.is_ready(target):
        return target
    os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
    staging = tempfile.mkdtemp(dir=os.path.dirname(target), prefix=layout.STAGING_PREFIX)
    try:
        manifest = {}
        with zipfile.ZipFile(archive) as opened:
            for name in opened.namelist():
                if name.startswith("/") or ".." in name.split("/") or name.endswith("/"):
                    continue
                data = opened.read(name)
                destination = os.path.join(staging, name)
                os.makedirs(os.path.dirname(destination), exist_ok=True)
                with open(destination, "wb") as handle:
                    handle.write(data)
                manifest[name] = hashlib.sha256(data).hexdigest()
        with open(os.path.join(staging, layout.CODE_MANIFEST), "w", encoding="utf-8") as handle:
            json.dump(dict(sorted(manifest.items())), handle, indent=0)
        with open(os.path.join(staging, layout.CODE_READY), "w", encoding="utf-8") as handle:
            handle.write(sha256 + "\n")
        try:
            os.rename(staging, target)
        except OSError:
            if not os.path.exists(os.path.join(target, layout.CODE_READY)):
                raise  # not a concurrent unpack that won the race
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def empty_version(cache: str) -> str:
    """The version with no file: what a cluster without working-directory code links to."""
    target = layout.code_dir(cache, layout.EMPTY_CODE)
    if not os.path.exists(os.path.join(target, layout.CODE_READY)):
        os.makedirs(target, exist_ok=True)
        with open(os.path.join(target, layout.CODE_MANIFEST), "w", encoding="utf-8") as handle:
            handle.write("{}")
        with open(os.path.join(target, layout.CODE_READY), "w", encoding="utf-8") as handle:
            handle.write("\n")
    return target


def link_path(cache: str, link_name: str) -> str:
    return os.path.join(cache, "code", "live", link_name)


def make_link(cache: str, code_id: str, link_name: str) -> str:
    """The live code link of one cluster on this machine (``$PACKSYNC_CODE_LINK``)."""
    link = link_path(cache, link_name)
    os.makedirs(os.path.dirname(link), exist_ok=True)
    target = layout.code_dir(cache, code_id) if code_id else empty_version(cache)
    tmp = f"{link}.{os.getpid()}"
    os.symlink(target, tmp)
    os.replace(tmp, link)
    return link


def held_link(cache: str, code_id: str, link_name: str) -> str:
    """``make_link``, its lease held by this process from before the link exists, and
    across its ``exec``: the link stays while the job's worker runs."""
    link = link_path(cache, link_name)
    lease.keep_across_exec(link)
    return make_link(cache, code_id, link_name)
