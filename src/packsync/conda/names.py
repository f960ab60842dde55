"""Conda <-> PyPI names, from the data file shipped beside this module.

Most conda packages of Python projects carry the PyPI name; the exceptions
(``dask-core``/``dask``, ``pytorch``/``torch``, ``msgpack-python``/``msgpack``, ...) are
listed in ``pypi_names.json``, which is data and can grow without touching code. The
files a record lists always win over this table: it is only the fallback.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from packaging.utils import canonicalize_name

NOT_PYTHON = ""


@cache
def _table() -> dict[str, str]:
    text = resources.files(__package__).joinpath("pypi_names.json").read_text(encoding="utf-8")
    data: dict[str, str] = json.loads(text)
    return {k: v for k, v in data.items() if not k.startswith("_")}


def pypi_name(conda_name: str) -> str:
    """The canonical PyPI name of a conda package ("" when it is known to be none)."""
    mapped = _table().get(conda_name)
    if mapped is None:
        return canonicalize_name(conda_name)
    return canonicalize_name(mapped) if mapped else NOT_PYTHON


@cache
def _reverse() -> dict[str, tuple[str, ...]]:
    reverse: dict[str, list[str]] = {}
    for conda_name, pypi in _table().items():
        if pypi:
            reverse.setdefault(canonicalize_name(pypi), []).append(conda_name)
    return {k: tuple(v) for k, v in reverse.items()}


def conda_names(name: str) -> tuple[str, ...]:
    """The conda packages that may provide PyPI distribution ``name`` (itself first)."""
    key = canonicalize_name(name)
    return (key, *(n for n in _reverse().get(key, ()) if n != key))
