"""An environment's archive: packed, verified, unpacked at another path for another Python,
and refused whole when altered, truncated or hostile."""

from __future__ import annotations

import io
import json
import os
import tarfile
import zlib
from pathlib import Path

import pytest

from packsync.hostside import artifact, install, layout
from tests.support.caches import DIGEST, build_lock_only


def fake_environment(path: Path) -> Path:
    """The shape of a relocatable venv: its config, interpreter links, a script, byte code."""
    (path / "bin").mkdir(parents=True)
    (path / "bin" / "python").symlink_to("/opt/builder/bin/python3.11")
    (path / "bin" / "python3").symlink_to("python")
    (path / "bin" / "tool").write_text('#!/bin/sh\n"$(dirname -- "$0")"/python -m tool\n')
    (path / "bin" / "tool").chmod(0o755)
    site = path / "lib" / "python3.11" / "site-packages"
    (site / "pkg" / "__pycache__").mkdir(parents=True)
    (site / "pkg" / "__init__.py").write_text("VALUE = 1\n")
    (site / "pkg" / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(os.urandom(2000))
    (site / "big.bin").write_bytes(os.urandom(300_000))  # several chunks
    os.utime(site / "pkg" / "__init__.py", (1_600_000_000, 1_600_000_000))
    (path / "lib64").symlink_to("lib")
    (path / "pyvenv.cfg").write_text("home = /opt/builder/bin\nimplementation = CPython\n"
                                     "version_info = 3.11.7\nrelocatable = true\n")
    (path / layout.READY_MARKER).write_text("digest\n")
    return path


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(artifact, "CHUNK_BYTES", 64 * 1024)


def packed(tmp_path: Path) -> tuple[dict, Path]:
    env = fake_environment(tmp_path / "built")
    manifest = artifact.pack(str(env), str(tmp_path / "chunks"), env_id="e" * 32,
                             digest="d" * 64, python="3.11.7", platform="Linux-x86_64")
    return manifest, tmp_path / "chunks"


def unpack(manifest: dict, chunks: Path, destination: Path) -> None:
    artifact.unpack(manifest, lambda sha: str(chunks / sha), str(destination),
                    python="/usr/bin/python3.11", python_version="3.11.2")


def test_an_archive_unpacks_elsewhere_for_this_hosts_python(tmp_path, small_chunks):
    manifest, chunks = packed(tmp_path)
    assert len(manifest["chunks"]) > 3 and manifest["format"] == artifact.FORMAT
    assert sorted(p.name for p in chunks.iterdir()) == sorted(c["sha256"] for c in
                                                              manifest["chunks"])
    target = tmp_path / "host" / "envs" / "e"
    unpack(manifest, chunks, target)
    built, site = tmp_path / "built", Path("lib/python3.11/site-packages")
    assert (target / site / "big.bin").read_bytes() == (built / site / "big.bin").read_bytes()
    assert (target / site / "pkg/__pycache__/__init__.cpython-311.pyc").read_bytes() == (
        built / site / "pkg/__pycache__/__init__.cpython-311.pyc").read_bytes()
    assert (target / site / "pkg/__init__.py").stat().st_mtime == 1_600_000_000  # .pyc valid
    assert os.readlink(target / "bin" / "python") == os.path.realpath("/usr/bin/python3.11")
    assert os.readlink(target / "bin" / "python3") == "python"
    assert os.access(target / "bin" / "tool", os.X_OK)
    config = (target / "pyvenv.cfg").read_text()
    assert f"home = {os.path.dirname(os.path.realpath('/usr/bin/python3.11'))}\n" in config
    assert "version_info = 3.11.2\n" in config and "relocatable = true" in config
    assert not (target / layout.READY_MARKER).exists()  # the caller writes it, last
    assert not [p for p in target.parent.iterdir() if p != target]  # no staging left


def test_packing_twice_gives_the_same_chunks(tmp_path, small_chunks):
    first, _ = packed(tmp_path)
    again = artifact.pack(str(tmp_path / "built"), str(tmp_path / "again"), env_id="e" * 32,
                          digest="d" * 64, python="3.11.7", platform="Linux-x86_64")
    assert again == first


@pytest.mark.attack("tampered store object")
@pytest.mark.parametrize("damage", ["flipped", "truncated", "missing"])
def test_a_damaged_chunk_refuses_the_whole_environment(tmp_path, small_chunks, damage):
    manifest, chunks = packed(tmp_path)
    victim = chunks / manifest["chunks"][-2]["sha256"]
    data = victim.read_bytes()
    if damage == "flipped":
        victim.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    elif damage == "truncated":
        victim.write_bytes(data[:-10])
    else:
        victim.unlink()
    target = tmp_path / "host" / "envs" / "e"
    with pytest.raises(artifact.ArtifactError) as refused:
        unpack(manifest, chunks, target)
    assert victim.name in str(refused.value) and str(chunks) in str(refused.value)
    assert not target.exists() and list(target.parent.iterdir()) == []


def hostile_archive(tmp_path: Path, add) -> tuple[dict, Path]:
    """A manifest of one chunk holding the tar that ``add(tar)`` writes."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        add(tar)
    data = zlib.compress(raw.getvalue())
    import hashlib

    sha = hashlib.sha256(data).hexdigest()
    (tmp_path / "chunks").mkdir(exist_ok=True)
    (tmp_path / "chunks" / sha).write_bytes(data)
    manifest = {"format": artifact.FORMAT, "codec": artifact.CODEC, "env_id": "e", "digest": "d",
                "chunks": [{"sha256": sha, "size": len(data), "raw_size": len(raw.getvalue())}]}
    return manifest, tmp_path / "chunks"


def _file(tar: tarfile.TarFile, name: str, data: bytes = b"x") -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _link(tar: tarfile.TarFile, name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    tar.addfile(info)


HOSTILE = {
    "absolute path": lambda tar: _file(tar, "/tmp/packsync-escaped"),
    "parent path": lambda tar: _file(tar, "../escaped"),
    "link out": lambda tar: _link(tar, "lib/out", "../../.."),
    "absolute link": lambda tar: _link(tar, "lib/etc", "/etc"),
    "write through a link": lambda tar: (_link(tar, "bin/python", "/tmp"),
                                         _file(tar, "bin/python/escaped")),
    "hard link out": lambda tar: _link(tar, "lib/passwd", "../../etc/passwd", tarfile.LNKTYPE),
    "device": lambda tar: tar.addfile(_device("dev")),
    "the interpreter link, then a file of its name": lambda tar: (
        _link(tar, "bin/python", "/tmp/packsync-escaped"), _file(tar, "bin/python")),
    "a link chain, then a file of its name": lambda tar: (
        _link(tar, "a/b", ".."), _link(tar, "s", "a/b/../escaped"), _file(tar, "s")),
}


def _device(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.CHRTYPE
    return info


@pytest.mark.attack("hostile archive (zip-slip, links)")
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_archive_is_refused_with_nothing_written(tmp_path, case):
    manifest, chunks = hostile_archive(tmp_path, HOSTILE[case])
    target = tmp_path / "host" / "envs" / "e"
    with pytest.raises(artifact.ArtifactError) as refused:
        unpack(manifest, chunks, target)
    assert refused.value.kind == "hostile"
    assert not target.exists() and list(target.parent.iterdir()) == []
    assert not Path("/tmp/packsync-escaped").exists() and not (tmp_path / "escaped").exists()
    assert not (tmp_path / "host" / "escaped").exists()


@pytest.mark.parametrize("manifest", [
    [], {"format": 99, "codec": "zlib", "chunks": []},
    {"format": artifact.FORMAT, "codec": "zstd", "chunks": []},
    {"format": artifact.FORMAT, "codec": "zlib", "chunks": [{"sha256": "nothex", "size": 1}]},
])
def test_a_manifest_of_another_format_is_refused_naming_where_it_came_from(manifest):
    with pytest.raises(artifact.ArtifactError) as refused:
        artifact.check_manifest(manifest, "the store at /shared")
    assert "the store at /shared" in str(refused.value) and refused.value.kind == "format"


def test_materialize_marks_ready_last_and_a_failed_build_leaves_nothing(tmp_path):
    cache = str(tmp_path / "cache")

    def broken(path: str) -> None:
        os.makedirs(os.path.join(path, "half"))
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        install.materialize(cache, "e1", DIGEST, broken)
    assert sorted(os.listdir(os.path.join(cache, "envs"))) == ["e1.lease", "e1.lock"]

    path, hit = install.materialize(cache, "e1", DIGEST, build_lock_only)
    assert not hit and layout.is_ready(path)
    assert json.loads(Path(path, layout.READY_MARKER).read_text())["digest"] == DIGEST
    assert install.materialize(cache, "e1", DIGEST,
                               lambda p: pytest.fail("rebuilt")) == (path, True)


def test_leftovers_of_a_killed_build_do_not_stop_the_next_one(tmp_path):
    cache = str(tmp_path / "cache")
    unfinished = Path(layout.env_dir(cache, "e1"))
    (unfinished / "lib").mkdir(parents=True)  # a build killed half-way: no marker
    staging = Path(cache, "envs", artifact.staging_prefix("e1") + "x")
    staging.mkdir()
    Path(cache, "envs", ".discarded-e1-old").mkdir()
    path, hit = install.materialize(cache, "e1", DIGEST, build_lock_only)
    assert not hit
    assert sorted(os.listdir(os.path.join(cache, "envs"))) == ["e1", "e1.lease", "e1.lock"]
    assert sorted(os.listdir(path)) == sorted([layout.READY_MARKER, layout.RECORD_DIR])


def test_files_that_name_the_builders_path_name_the_hosts(tmp_path, small_chunks):
    env = fake_environment(tmp_path / "built")
    old = str(env)
    record = env / "lib/python3.11/site-packages/pkg-1.0.dist-info"
    record.mkdir()
    (record / "direct_url.json").write_text(json.dumps({"url": f"file://{old}/x.whl"}))
    (env / "bin" / "conda-script").write_text(f"#!{old}/bin/python3.11\nprint(1)\n")
    (record / "RECORD").write_text("../../../bin/conda-script,sha256=stale,40\n"
                                   "pkg-1.0.dist-info/RECORD,,\n")
    library = b"\x7fELF" + b"\0" * 10 + old.encode() + b"/lib:/usr/lib\0" + b"tail"
    (env / "lib" / "libthing.so").write_bytes(library)
    manifest = artifact.pack(str(env), str(tmp_path / "chunks"), env_id="e" * 32,
                             digest="d" * 64, python="3.11.7", platform="Linux-x86_64")
    assert manifest["prefixed"] == {"bin/conda-script": "text", "lib/libthing.so": "binary",
                                    "lib/python3.11/site-packages/pkg-1.0.dist-info/"
                                    "direct_url.json": "text"}
    target = tmp_path / "h" / "e"  # shorter than the builder's path
    unpack(manifest, tmp_path / "chunks", target)
    assert (target / "bin/conda-script").read_text().startswith(f"#!{target}/bin/python3.11")
    assert str(target) in (target / record.relative_to(env) / "direct_url.json").read_text()
    script = (target / "bin/conda-script").read_bytes()
    import base64
    import hashlib

    digest = base64.urlsafe_b64encode(hashlib.sha256(script).digest()).rstrip(b"=").decode()
    assert (target / record.relative_to(env) / "RECORD").read_text().splitlines() == [
        f"../../../bin/conda-script,sha256={digest},{len(script)}", "pkg-1.0.dist-info/RECORD,,"]
    rewritten = (target / "lib" / "libthing.so").read_bytes()
    assert len(rewritten) == len(library) and rewritten.endswith(b"tail")
    assert f"{target}/lib:/usr/lib".encode() + b"\0" in rewritten
    longer = tmp_path / ("x" * 200) / "e"
    with pytest.raises(artifact.ArtifactError) as refused:
        unpack(manifest, tmp_path / "chunks", longer)
    assert refused.value.kind == "relocate" and "lib/libthing.so" in str(refused.value)


def test_a_conda_binary_takes_a_longer_path_within_its_placeholders_room(tmp_path,
                                                                           small_chunks):
    env = fake_environment(tmp_path / "built")
    old = str(env)
    placeholder = "/opt/placehold" + "_" * 286  # 300 bytes, as conda package builds pad
    padding = b"\0" * (len(placeholder) - len(old))
    library = (b"\x7fELF\0" + old.encode() + b"/lib:" + old.encode() + b"/x\0" + padding * 2
               + b"tail")
    (env / "lib" / "libthing.so").write_bytes(library)
    (env / "lib" / "other.so").write_bytes(b"\0" + old.encode() + b"\0" + b"\0" * 400)
    (env / "conda-meta").mkdir()
    (env / "conda-meta" / "thing-1.0-h0_0.json").write_text(json.dumps({"paths_data": {
        "paths": [{"_path": "lib/libthing.so", "file_mode": "binary",
                   "prefix_placeholder": placeholder}]}}))
    manifest = artifact.pack(str(env), str(tmp_path / "chunks"), env_id="e" * 32,
                             digest="d" * 64, python="3.11.7", platform="Linux-x86_64")
    assert manifest["room"] == {"lib/libthing.so": 300}
    longer = tmp_path / ("x" * 150) / "e"
    with pytest.raises(artifact.ArtifactError) as refused:  # other.so has no placeholder
        unpack(manifest, tmp_path / "chunks", longer)
    assert refused.value.kind == "relocate" and "lib/other.so" in str(refused.value)
    assert not longer.exists()
    del manifest["prefixed"]["lib/other.so"]
    unpack(manifest, tmp_path / "chunks", longer)
    rewritten = (longer / "lib" / "libthing.so").read_bytes()
    new = str(longer).encode()
    assert len(rewritten) == len(library)
    assert b"\0" + new + b"/lib:" + new + b"/x\0" in rewritten
    assert rewritten.endswith(b"\0tail")
    assert old.encode() + b"/lib" not in rewritten
    too_long = tmp_path / ("y" * 160) / ("z" * 160) / "e"
    with pytest.raises(artifact.ArtifactError) as refused:
        unpack(manifest, tmp_path / "chunks", too_long)
    assert refused.value.kind == "relocate" and "room for 300 bytes" in str(refused.value)


def test_an_archive_for_another_platform_or_python_minor_is_refused(tmp_path):
    manifest = {"platform": "Linux-x86_64", "python": "3.12.1", "own_python": False}
    artifact.check_compatible(manifest, python_version="3.12.4", platform="linux-x86_64")
    with pytest.raises(artifact.ArtifactError, match="Python 3.12.1.*Python 3.11.7"):
        artifact.check_compatible(manifest, python_version="3.11.7", platform="Linux-x86_64")
    with pytest.raises(artifact.ArtifactError, match="Linux-x86_64, this machine is Linux-aarch64"):
        artifact.check_compatible(manifest, python_version="3.12.1", platform="Linux-aarch64")
    # a conda environment brings its own Python: the host's version does not matter
    artifact.check_compatible({**manifest, "own_python": True}, python_version="3.10.2",
                              platform="Linux-x86_64")
