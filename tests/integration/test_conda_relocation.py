"""A conda environment unpacked at a path longer than its builder's: a binary that names
its prefix, installed by rattler from a package built with a long placeholder (as
conda-forge's are), runs at the host's path."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest
import rattler
from rattler_build import ArchiveType, assemble_package

from packsync.hostside import artifact

pytestmark = pytest.mark.integration

WHERE_C = '#include <stdio.h>\nconst char *where = "%s/share/data";\n' \
          'int main(void) { puts(where); return 0; }\n'


def _package_naming_its_prefix(channel: Path, work: Path) -> str:
    """``where``: an executable that prints a path under its prefix; its placeholder."""
    stage = work / ("build_env_placehold" + "_placehold" * 14)
    (stage / "bin").mkdir(parents=True)
    (work / "where.c").write_text(WHERE_C % stage)
    subprocess.run(["cc", "-o", str(stage / "bin" / "where"), str(work / "where.c")],
                   check=True)
    assemble_package("where", "1.0", "linux-64", "h0_0", channel / "linux-64", files_dir=stage,
                     compression_level=1, archive_type=ArchiveType.TarBz2)
    package = channel / "linux-64" / "where-1.0-h0_0.tar.bz2"
    _record_placeholder(package, "bin/where", str(stage))
    (channel / "noarch").mkdir(exist_ok=True)
    asyncio.run(rattler.index.index_fs(channel))
    return str(stage)


def _record_placeholder(package: Path, relative: str, placeholder: str) -> None:
    """Mark ``relative`` in the package's ``info/paths.json`` as naming ``placeholder`` in
    binary code, as conda-build and rattler-build do for a file that embeds the prefix."""
    with tarfile.open(package) as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else None)  # type: ignore[union-attr]
                   for m in tar.getmembers()]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:bz2") as tar:
        for member, data in members:
            if member.name == "info/paths.json" and data is not None:
                paths = json.loads(data)
                for entry in paths["paths"]:
                    if entry["_path"] == relative:
                        entry.update(prefix_placeholder=placeholder, file_mode="binary")
                data = json.dumps(paths).encode()
                member.size = len(data)
            tar.addfile(member, io.BytesIO(data) if data is not None else None)
    package.write_bytes(out.getvalue())


def _install(prefix: Path, channel: Path, cache: Path) -> None:
    async def make() -> None:
        gateway = rattler.Gateway(cache_dir=str(cache / "repodata"))
        records = await rattler.solve([str(channel)], ["where"], gateway=gateway,
                                      platforms=["linux-64", "noarch"])
        await rattler.install(records, prefix, cache_dir=cache / "pkgs", show_progress=False)
    asyncio.run(make())


def test_a_conda_binary_runs_at_a_longer_path_than_its_builders(tmp_path: Path) -> None:
    placeholder = _package_naming_its_prefix(tmp_path / "channel", tmp_path / "work")
    built = tmp_path / "b"
    _install(built, tmp_path / "channel", tmp_path / "rattler")
    manifest = artifact.pack(str(built), str(tmp_path / "chunks"), env_id="e" * 32,
                             digest="d" * 64, python="3.11.7", platform="Linux-x86_64")
    assert manifest["room"] == {"bin/where": len(placeholder)}

    host = tmp_path / "home" / "a-much-longer-user-name" / ".cache" / "packsync" / "envs" / "e"
    assert len(str(host)) > len(str(built))
    artifact.unpack(manifest, lambda sha: str(tmp_path / "chunks" / sha), str(host),
                    python="/usr/bin/python3", python_version="3.11.7")
    ran = subprocess.run([str(host / "bin" / "where")], capture_output=True, text=True,
                         check=True)
    assert ran.stdout == f"{host}/share/data\n"
