"""How the host-side package reaches a machine that has only Python, and is checked there.

The package travels as one deterministic zip of its sources (``package()``). Over SSH
the zip comes first on the channel's stdin and ``LOADER`` (a one-line ``python -I -c``
program) runs it from memory (``boot``); a batch job runs ``BOOTSTRAP`` with the zip's
path in a shared store and its SHA-256, and the zip is refused unless it has that hash:
whoever can write the store cannot make workers run other code. Either way nothing is written
to the host to run it, and the modules are the client's own: one definition of the
host side for the client and every host.
"""

from __future__ import annotations

import functools
import io
import zipfile
from importlib import resources

_EPOCH = (1980, 1, 1, 0, 0, 0)

_BOOT = "packsync/hostside/boot.py"
# After ``d`` (the zip) and ``a`` (the arguments): run ``boot.py`` from the zip itself.
_RUN = (
    "import zipfile;g={'__name__':'packsync_boot'};"
    f"exec(zipfile.ZipFile(io.BytesIO(d)).read('{_BOOT}'),g);sys.exit(g['run'](d,a))"
)
# Over SSH: the zip's size, the zip, then the header arrive on stdin.
LOADER = "import sys,io;b=sys.stdin.buffer;d=b.read(int(b.readline()));a=sys.argv[1:];" + _RUN
# From a store: ``-c BOOTSTRAP ZIP SHA256 ARGS...``; a zip of another hash never runs, and
# a missing one (the store not mounted on this machine) is said so, naming the machine.
BOOTSTRAP = (
    "import sys,io,os,hashlib,socket;p,h=sys.argv[1:3];a=sys.argv[3:];"
    "w='packsync: failed on '+socket.gethostname()+': '+p;os.path.exists(p) or "
    "sys.exit(w+' is not there; is the shared store mounted on this machine?');"
    "d=open(p,'rb').read();hashlib.sha256(d).hexdigest()==h or sys.exit(w+' does not have "
    "sha256:'+h+'; refusing to run it (the store was altered)');" + _RUN
)


@functools.cache
def package() -> bytes:
    """The zip of ``packsync.hostside`` (with an empty ``packsync``), byte for byte stable."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        _add(bundle, "packsync/__init__.py", b"")
        for entry in sorted(resources.files(__package__).iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".py"):
                _add(bundle, f"packsync/hostside/{entry.name}", entry.read_bytes())
    return buffer.getvalue()


def _add(bundle: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    bundle.writestr(info, data)


def stdin_prefix() -> bytes:
    """What ``LOADER`` reads first on stdin: the package's size, then the package."""
    data = package()
    return b"%d\n" % len(data) + data


def module_names() -> list[str]:
    """The modules the package carries (a test checks they import nothing else)."""
    with zipfile.ZipFile(io.BytesIO(package())) as bundle:
        return [n[:-3].replace("/", ".") for n in bundle.namelist()]
