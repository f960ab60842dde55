"""An environment as one archive: packed once by its builder, unpacked by every host.

The archive is the environment directory as a tar stream (byte code included), cut into
chunks of ``CHUNK_BYTES`` that are compressed one by one, so that chunks compress,
travel, verify and decompress in parallel. Each chunk is a store object named by the
SHA-256 of its compressed bytes; the manifest lists them in order, with the
environment's digest and the Python and platform it was built for. A chunk is verified
before a byte of it is decompressed, and the environment is unpacked into a staging
directory that becomes the environment only when every chunk arrived whole: nothing
half-unpacked is ever used.

Environments are made relocatable (``uv venv --relocatable``: scripts find their
interpreter next to themselves), so a host unpacks one at its own path and only points
it at its own Python: the ``bin/python`` link and ``pyvenv.cfg``. Every other file that
names the builder's path (``direct_url.json`` records; in a conda environment, which
carries its own Python, script shebangs and files with a prefix placeholder) is listed in
the manifest and rewritten for the host's path: text in full, binary files padded with
NUL bytes as conda does. A binary file may take a path as long as the placeholder its conda
package was built with (conda-meta records it; conda-forge's are 255 characters), since the
installer left the rest of that room as NUL padding; any other binary file only a path no
longer than the builder's.
Byte code stays valid: sources keep their modification times, and the import system
corrects the path compiled into a ``.pyc`` when it loads it.

Standard library only: this runs on hosts that have nothing but Python.
"""

from __future__ import annotations

import base64
import concurrent.futures
import csv
import glob
import hashlib
import json
import os
import posixpath
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Any, cast

from packsync.hostside import layout
from packsync.hostside.layout import READY_MARKER, RECORD_DIR, STAGING_PREFIX, WHEELS_DIR

FORMAT = 1
CODEC = "zlib"
CHUNK_BYTES = 16 << 20
LEVEL = 1  # several times faster than zlib's default, for a few percent more bytes
_SKIPPED = {READY_MARKER, READY_MARKER + ".partial", posixpath.join(RECORD_DIR, WHEELS_DIR)}
_PYTHON_LINK = "bin/python"


class ArtifactError(Exception):
    """An archive that cannot be used: altered, truncated, hostile, or of another format."""

    def __init__(self, message: str, kind: str = "integrity") -> None:
        super().__init__(message)
        self.kind = kind


# --- packing (on the builder) --------------------------------------------------------------

def pack(path: str, out_dir: str, *, env_id: str, digest: str, python: str, platform: str,
         threads: int = 0) -> dict[str, Any]:
    """Pack the ready environment at ``path`` into chunk files in ``out_dir``; its manifest."""
    threads = threads or min(8, os.cpu_count() or 1)
    os.makedirs(out_dir, exist_ok=True)
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        writer = _ChunkWriter(pool, out_dir, limit=2 * threads)
        # GNU, not PAX: no extended header per member (PAX's is for sub-second times, which
        # byte code does not use), which makes unpacking a quarter faster
        with tarfile.open(fileobj=cast(IO[bytes], writer), mode="w|",
                          format=tarfile.GNU_FORMAT) as tar:
            tar.add(path, arcname=".", filter=_packed_member)
        chunks = writer.finish()
    prefix = os.path.abspath(path)
    return {
        "format": FORMAT,
        "codec": CODEC,
        "env_id": env_id,
        "digest": digest,
        "python": python,
        "platform": platform,
        "chunks": chunks,
        "prefix": prefix,
        "prefixed": (prefixed := _naming(prefix)),
        "room": _placeholder_room(prefix, prefixed),
        "own_python": not os.path.exists(os.path.join(path, "pyvenv.cfg")),  # conda's
        "raw_size": sum(c["raw_size"] for c in chunks),
        "size": sum(c["size"] for c in chunks),
    }


def _naming(prefix: str) -> dict[str, str]:
    """The files under ``prefix`` that contain it: relative path -> "text" or "binary"."""
    needle = prefix.encode()
    found: dict[str, str] = {}
    for root, dirs, files in os.walk(prefix):
        dirs[:] = [d for d in dirs if d != "__pycache__"]  # .pyc paths are fixed at import
        for name in files:
            path = os.path.join(root, name)
            if os.path.islink(path) or name in (READY_MARKER, READY_MARKER + ".partial"):
                continue
            with open(path, "rb") as handle:
                data = handle.read()
            if needle in data:
                relative = os.path.relpath(path, prefix).replace(os.sep, "/")
                found[relative] = "binary" if b"\0" in data else "text"
    return dict(sorted(found.items()))


def _placeholder_room(prefix: str, prefixed: dict[str, str]) -> dict[str, int]:
    """Binary files of conda packages -> the length of the placeholder each was built with:
    the longest path that fits where the installer wrote the builder's."""
    room: dict[str, int] = {}
    for record in glob.glob(os.path.join(prefix, "conda-meta", "*.json")):
        try:
            with open(record, encoding="utf-8") as handle:
                paths = (json.load(handle).get("paths_data") or {}).get("paths") or []
        except (OSError, ValueError, AttributeError):
            continue
        for entry in paths:
            if not isinstance(entry, dict):
                continue
            relative, placeholder = entry.get("_path"), entry.get("prefix_placeholder")
            if (entry.get("file_mode") == "binary" and isinstance(placeholder, str)
                    and prefixed.get(str(relative)) == "binary"):
                room[str(relative)] = len(placeholder.encode())
    return dict(sorted(room.items()))


def _packed_member(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    name = posixpath.normpath(info.name)
    if name in _SKIPPED or name.endswith(".pyc.partial"):
        return None
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


class _ChunkWriter:
    """A write-only stream that cuts what it is given into compressed, hashed chunk files."""

    def __init__(self, pool: concurrent.futures.Executor, out_dir: str, limit: int) -> None:
        self.pool = pool
        self.out_dir = out_dir
        self.limit = limit
        self.buffer = bytearray()
        self.pending: list[concurrent.futures.Future[dict[str, Any]]] = []
        self.done: list[dict[str, Any]] = []

    def write(self, data: bytes) -> int:
        self.buffer += data
        while len(self.buffer) >= CHUNK_BYTES:
            self._submit(bytes(self.buffer[:CHUNK_BYTES]))
            del self.buffer[:CHUNK_BYTES]
        return len(data)

    def _submit(self, raw: bytes) -> None:
        self.pending.append(self.pool.submit(_write_chunk, raw, self.out_dir))
        while len(self.pending) > self.limit:  # bounded memory: wait for the oldest
            self.done.append(self.pending.pop(0).result())

    def finish(self) -> list[dict[str, Any]]:
        if self.buffer:
            self._submit(bytes(self.buffer))
            self.buffer.clear()
        self.done += [f.result() for f in self.pending]
        self.pending.clear()
        return self.done


def _write_chunk(raw: bytes, out_dir: str) -> dict[str, Any]:
    data = zlib.compress(raw, LEVEL)
    sha256 = hashlib.sha256(data).hexdigest()
    target = os.path.join(out_dir, sha256)
    if not os.path.exists(target):
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".chunk-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)
    return {"sha256": sha256, "size": len(data), "raw_size": len(raw)}


# --- unpacking (on every host) -------------------------------------------------------------

def check_manifest(manifest: Any, origin: str) -> dict[str, Any]:
    """The manifest, if it is one this code can unpack; else an error naming ``origin``."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise ArtifactError(f"{origin} is not an environment manifest of format {FORMAT} "
                            f"(found {found!r})", kind="format")
    if manifest.get("codec") != CODEC:
        raise ArtifactError(f"{origin} uses codec {manifest.get('codec')!r}, not {CODEC!r}",
                            kind="format")
    prefixed = manifest.get("prefixed") or {}
    if not isinstance(prefixed, dict) or not all(
            isinstance(k, str) and v in ("text", "binary") for k, v in prefixed.items()):
        raise ArtifactError(f"{origin}: prefixed is malformed", kind="format")
    room = manifest.get("room") or {}
    if not isinstance(room, dict) or not all(
            prefixed.get(k) == "binary" and isinstance(v, int) and v > 0
            for k, v in room.items()):
        raise ArtifactError(f"{origin}: room is malformed", kind="format")
    for index, chunk in enumerate(manifest.get("chunks") or []):
        if not (isinstance(chunk, dict) and layout.is_digest(chunk.get("sha256"))
                and isinstance(chunk.get("size"), int) and isinstance(chunk.get("raw_size"), int)):
            raise ArtifactError(f"{origin}: chunks[{index}] is malformed", kind="format")
    return manifest


def check_compatible(manifest: dict[str, Any], *, python_version: str, platform: str) -> None:
    """Refuse an archive built for another platform, or for another Python minor when the
    environment runs this machine's Python (a conda one brings its own)."""
    if str(manifest.get("platform", "")).lower() != platform.lower():
        raise ArtifactError(f"the environment was built for {manifest.get('platform')}, this "
                            f"machine is {platform}", kind="platform")
    built, here = str(manifest.get("python", "")), python_version
    if not manifest.get("own_python") and built.split(".")[:2] != here.split(".")[:2]:
        raise ArtifactError(f"the environment was built for Python {built}, this machine's "
                            f"interpreter is Python {here}", kind="platform")


def unpack(manifest: dict[str, Any], chunk_file: Callable[[str], str], destination: str, *,
           python: str, python_version: str, threads: int = 0) -> None:
    """Unpack the environment to ``destination`` (which must not exist), for ``python``.

    ``chunk_file`` gives the local path of a chunk by its SHA-256; every chunk is verified
    before use. The caller holds the environment's lock; the ready marker is not written
    here (the caller writes it last, once everything else of the environment is there).
    """
    parent = os.path.dirname(destination)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(dir=parent, prefix=staging_prefix(os.path.basename(destination)))
    try:
        threads = threads or min(4, os.cpu_count() or 1)
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            stream = _ChunkReader(manifest["chunks"], chunk_file, pool, ahead=threads)
            try:
                _extract(cast(IO[bytes], stream), staging)
            except (tarfile.TarError, EOFError) as error:
                raise ArtifactError(f"the archive is not a valid tar stream: {error}",
                                    kind="format") from None
        rewrite_prefix(staging, manifest, destination)
        if os.path.isfile(os.path.join(staging, "pyvenv.cfg")):  # conda brings its Python
            relocate(staging, python, python_version)
        os.rename(staging, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _extract(stream: IO[bytes], staging: str) -> None:
    """Extract every member below ``staging``; symbolic links last, so that nothing is ever
    written through one, and the builder's interpreter link not at all (``relocate``
    makes this machine's). Members are written here rather than by ``TarFile.extract``,
    which looks up owners and re-checks every path: the checks that matter are made once,
    by ``_checked``, and files belong to whoever unpacks them."""
    seen: set[str] = set()
    link_names: set[str] = set()
    links: list[tarfile.TarInfo] = []
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            name = _checked(member, seen, link_names)
            target = _inside(staging, name)
            if member.issym():
                if not (name == _PYTHON_LINK and member.linkname.startswith("/")):
                    links.append(member)
            elif member.isdir():
                os.makedirs(target, mode=0o700, exist_ok=True)
                os.chmod(target, member.mode | 0o700)
            elif member.islnk():
                _in_parent(os.link, _inside(staging, posixpath.normpath(member.linkname)),
                           target)
            else:
                _write_member(tar, member, target)
    for link in links:
        _in_parent(os.symlink, link.linkname, _inside(staging, posixpath.normpath(link.name)))


def _inside(staging: str, name: str) -> str:
    return staging if name == "." else os.path.join(staging, *name.split("/"))


def _in_parent(make: Callable[[str, str], None], source: str, target: str) -> None:
    """``make(source, target)``, creating ``target``'s directory if the archive did not."""
    try:
        make(source, target)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        make(source, target)


def _write_member(tar: tarfile.TarFile, member: tarfile.TarInfo, target: str) -> None:
    source = tar.extractfile(member)
    assert source is not None  # a regular file
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(target, flags, member.mode)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        fd = os.open(target, flags, member.mode)
    try:
        left = member.size
        while left:
            block = source.read(min(left, 1 << 20))
            if not block:
                raise ArtifactError(f"archive member {member.name!r} is truncated",
                                    kind="format")
            left -= len(block)
            view = memoryview(block)
            while view:
                view = view[os.write(fd, view):]
        os.fchmod(fd, member.mode)  # the creation mode went through this process's umask
        os.utime(fd, (member.mtime, member.mtime))  # byte code is checked against it
    finally:
        os.close(fd)


def staging_prefix(env_id: str) -> str:
    return f"{STAGING_PREFIX}{env_id}-"


class _ChunkReader:
    """A read-only stream of the tar bytes: chunks verified and decompressed ahead, in order."""

    def __init__(self, chunks: list[dict[str, Any]], chunk_file: Callable[[str], str],
                 pool: concurrent.futures.Executor, ahead: int) -> None:
        self.jobs: Iterator[concurrent.futures.Future[bytes]] = self._schedule(
            chunks, chunk_file, pool, ahead)
        self.buffer = b""
        self.offset = 0

    @staticmethod
    def _schedule(chunks: list[dict[str, Any]], chunk_file: Callable[[str], str],
                  pool: concurrent.futures.Executor,
                  ahead: int) -> Iterator[concurrent.futures.Future[bytes]]:
        window: list[concurrent.futures.Future[bytes]] = []
        for chunk in chunks:
            window.append(pool.submit(_read_chunk, chunk, chunk_file))
            if len(window) > ahead:
                yield window.pop(0)
        yield from window

    def read(self, size: int = -1) -> bytes:
        if 0 <= size <= len(self.buffer) - self.offset:  # most reads: a header, a block
            self.offset += size
            return self.buffer[self.offset - size:self.offset]
        out = bytearray()
        while size < 0 or len(out) < size:
            if self.offset >= len(self.buffer):
                job = next(self.jobs, None)
                if job is None:
                    break
                self.buffer, self.offset = job.result(), 0
                continue
            end = len(self.buffer) if size < 0 else min(len(self.buffer),
                                                        self.offset + size - len(out))
            out += memoryview(self.buffer)[self.offset:end]
            self.offset = end
        return bytes(out)


def _read_chunk(chunk: dict[str, Any], chunk_file: Callable[[str], str]) -> bytes:
    sha256 = str(chunk["sha256"])
    path = chunk_file(sha256)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise ArtifactError(f"chunk sha256:{sha256} cannot be read from {path}: "
                            f"{error.strerror or error}", kind="missing") from None
    if len(data) != chunk["size"] or hashlib.sha256(data).hexdigest() != sha256:
        raise ArtifactError(f"chunk sha256:{sha256} at {path} is altered or truncated "
                            f"({len(data)} bytes, {chunk['size']} expected)")
    try:
        raw = zlib.decompress(data)
    except zlib.error as error:
        raise ArtifactError(f"chunk sha256:{sha256} does not decompress: {error}") from None
    if len(raw) != chunk["raw_size"]:
        raise ArtifactError(f"chunk sha256:{sha256} decompresses to {len(raw)} bytes, "
                            f"{chunk['raw_size']} expected")
    return raw


def _checked(member: tarfile.TarInfo, seen: set[str], links: set[str]) -> str:
    """The member's normalised name, if it stays inside the environment and is a plain file,
    directory or link there, named once; else the whole archive is refused."""
    name = posixpath.normpath(member.name)
    if name.startswith("/") or name == ".." or name.startswith("../"):
        raise ArtifactError(f"archive member {member.name!r} points outside the environment",
                            kind="hostile")
    if name in seen and name != ".":
        raise ArtifactError(f"archive member {member.name!r} comes twice", kind="hostile")
    if any(name.startswith(f"{link}/") for link in links):
        raise ArtifactError(f"archive member {member.name!r} lies below a link",
                            kind="hostile")
    seen.add(name)
    if member.issym():
        links.add(name)
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise ArtifactError(f"archive member {member.name!r} is not a file, directory or link",
                            kind="hostile")
    if member.islnk() or (member.issym() and not (
            name == _PYTHON_LINK and member.linkname.startswith("/"))):
        base = "." if member.islnk() else posixpath.dirname(name)
        target = posixpath.normpath(posixpath.join(base, member.linkname))
        if member.linkname.startswith("/") or target == ".." or target.startswith("../"):
            raise ArtifactError(f"archive link {member.name!r} -> {member.linkname!r} points "
                                "outside the environment", kind="hostile")
    member.mode &= 0o755  # no set-id bits, nothing writable by others
    return name


def rewrite_prefix(staging: str, manifest: dict[str, Any], destination: str) -> None:
    """Make the files that name the builder's path name ``destination`` instead."""
    old, new = str(manifest.get("prefix", "")), os.path.abspath(destination)
    if not old or old == new:
        return
    rewritten: list[str] = []
    room = dict(manifest.get("room") or {})
    for relative, kind in dict(manifest.get("prefixed") or {}).items():
        path = os.path.join(staging, *relative.split("/"))
        inside = os.path.realpath(path).startswith(os.path.realpath(staging) + os.sep)
        if _escapes(relative) or not inside or os.path.islink(path) or not os.path.isfile(path):
            raise ArtifactError(f"archive lists {relative!r} to rewrite, which is not one of "
                                "its files", kind="hostile")
        with open(path, "rb") as handle:
            data = handle.read()
        if kind == "binary":
            data = _replace_padded(data, old.encode(), new.encode(),
                                   room=int(room.get(relative, len(old.encode()))),
                                   relative=relative)
        else:
            data = data.replace(old.encode(), new.encode())
        mode = os.stat(path).st_mode
        with open(path, "wb") as handle:
            handle.write(data)
        os.chmod(path, mode)
        rewritten.append(relative)
    _update_records(staging, set(rewritten))


def _update_records(staging: str, rewritten: set[str]) -> None:
    """The ``RECORD`` hashes of rewritten files, as an installer writes them for their path."""
    if not rewritten:
        return
    for record in glob.glob(os.path.join(staging, "lib", "python*", "site-packages",
                                         "*.dist-info", "RECORD")):
        site = os.path.dirname(os.path.dirname(record))
        with open(record, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        changed = False
        for row in rows:
            if not row:
                continue
            target = os.path.relpath(os.path.normpath(os.path.join(site, row[0])), staging)
            if target.replace(os.sep, "/") in rewritten:
                with open(os.path.join(staging, target), "rb") as handle:
                    data = handle.read()
                digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
                row[1:3] = [f"sha256={digest.decode()}", str(len(data))]
                changed = True
        if changed:
            with open(record, "w", newline="", encoding="utf-8") as handle:
                csv.writer(handle, lineterminator="\n").writerows(rows)


def _replace_padded(data: bytes, old: bytes, new: bytes, *, room: int, relative: str) -> bytes:
    """Each NUL-terminated string holding ``old`` gets ``new``, padded to its length.

    A string may grow into the NUL padding after it by ``room - len(old)`` bytes for each
    ``old`` it holds: the room a conda installer left when it put ``old`` in place of a
    placeholder of ``room`` bytes."""
    if len(new) > room:
        raise ArtifactError(
            f"{relative} names the builder's path {old.decode(errors='replace')} in binary "
            f"code, with room for {room} bytes, and this machine's path "
            f"{new.decode(errors='replace')} is longer: it cannot be rewritten in place",
            kind="relocate")
    out, start = bytearray(), 0
    while (found := data.find(old, start)) >= 0:
        end = data.find(b"\0", found)
        end = len(data) if end < 0 else end
        text = data[found:end].replace(old, new)
        length = end - found
        grow = len(text) - length
        if grow > 0:
            padding = data[end:end + grow + 1]
            if padding != b"\0" * (grow + 1):
                raise ArtifactError(
                    f"{relative}: a string naming the builder's path has no room for this "
                    f"machine's longer path {new.decode(errors='replace')}", kind="relocate")
            length += grow
        out += data[start:found] + text + b"\0" * (length - len(text))
        start = found + length
    return bytes(out + data[start:])


def _escapes(relative: str) -> bool:
    name = posixpath.normpath(relative)
    return name.startswith(("/", "../")) or name == ".."


def relocate(path: str, python: str, version: str) -> None:
    """Point the environment at ``path`` at this host's interpreter ``python``."""
    real = os.path.realpath(python)
    link = os.path.join(path, "bin", "python")
    if os.path.isdir(link) and not os.path.islink(link):
        raise ArtifactError("the archive's bin/python is a directory", kind="hostile")
    if os.path.lexists(link):
        os.unlink(link)
    os.symlink(real, link)
    config = os.path.join(path, "pyvenv.cfg")
    if os.path.islink(config):
        raise ArtifactError("the archive's pyvenv.cfg is a link", kind="hostile")
    lines = []
    with open(config, encoding="utf-8") as handle:
        for line in handle:
            key = line.partition("=")[0].strip()
            if key == "home":
                line = f"home = {os.path.dirname(real)}\n"
            elif key in ("version_info", "version"):
                line = f"{key} = {version}\n"
            lines.append(line)
    with open(config, "w", encoding="utf-8") as handle:
        handle.writelines(lines)


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """The canonical bytes of a manifest (its SHA-256 names it in a store)."""
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
