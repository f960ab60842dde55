"""The first code a machine runs: the host-side package imported from its zip, in memory.

``loader.LOADER`` and ``loader.BOOTSTRAP`` (one-line ``python -I -c`` programs) read the
zip of ``packsync.hostside``, check it where it came from a store, and ``exec`` this
file's source taken from that zip; ``run`` then serves every ``packsync.*`` import from
the zip's bytes and runs ``packsync.hostside.main``. Nothing is written to the machine
to run it, and nothing installed there is imported in its place.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import io
import sys
import types
import zipfile


class ZipSources(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports of ``packsync`` and its host-side modules, from the zip's bytes."""

    def __init__(self, data: bytes) -> None:
        with zipfile.ZipFile(io.BytesIO(data)) as bundle:
            self.sources = {n[:-3].replace("/", "."): bundle.read(n)
                            for n in bundle.namelist() if n.endswith(".py")}

    def _key(self, name: str) -> str:
        return name if name in self.sources else f"{name}.__init__"

    def find_spec(self, name: str, path: object = None,
                  target: object = None) -> importlib.machinery.ModuleSpec | None:
        key = self._key(name)
        if key not in self.sources:
            return None
        return importlib.util.spec_from_loader(name, self, is_package=key != name)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def get_source(self, name: str) -> str:
        return self.sources[self._key(name)].decode()

    def exec_module(self, module: types.ModuleType) -> None:
        key = self._key(module.__name__)
        module.__file__ = f"<packsync>/{key.replace('.', '/')}.py"
        exec(compile(self.sources[key], module.__file__, "exec"), module.__dict__)


def run(data: bytes, argv: list[str]) -> int:
    sys.meta_path.insert(0, ZipSources(data))
    from packsync.hostside.main import main

    return main(argv)
