"""Models to JSON (or TOML) data and back, defined once for every model.

Writing is ``dataclasses.asdict`` with a dict factory; reading follows the model's own
annotations, checks every value's type and names the path of the first bad one
(``snapshot.dists[3].version: expected a string, found an integer``), so a damaged or
foreign file never surfaces as a bare ``KeyError``.

Keys are the field names, snake_case, in every JSON packsync writes: the same spelling as
the Python attributes and as the documented ``packsync plan --json`` rows. A model kept in
a TOML lock (``[tool.packsync]`` of ``pylock.toml``) uses kebab-case, as PEP 751 does for
its own keys. A field declared with ``init=False`` is a constant of the format (a
document's ``format``, a source's ``kind``): it is written, and reading checks it.
Missing keys take the field's default; keys the model does not know are ignored.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import types
from collections.abc import Mapping
from typing import (
    Any,
    ClassVar,
    Literal,
    TypeVar,
    Union,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)

from packsync.errors import PacksyncError

KeyStyle = Literal["snake", "kebab"]
TAG = "kind"  # the key that says which member of a union of models a mapping is

_T = TypeVar("_T")
_M = TypeVar("_M", bound="Serialisable")


class FormatError(PacksyncError, ValueError):
    """Data that is not of the format its reader expects; the message names the field."""

    stage = "format"


class Serialisable:
    """Base of the models: one ``to_dict`` and one ``from_dict`` for all of them."""

    __slots__ = ()
    key_style: ClassVar[KeyStyle] = "snake"

    def to_dict(self) -> dict[str, Any]:
        return to_data(self, self.key_style)

    @classmethod
    def from_dict(cls: type[_M], data: object, path: str = "") -> _M:
        """``data`` as this model; ``path`` names it in errors (default: the class name)."""
        return from_data(cls, data, path or _snake(cls.__name__), cls.key_style)


def to_data(model: Any, style: KeyStyle = "snake") -> dict[str, Any]:
    """A dataclass as plain dicts, lists and scalars, ready for ``json.dumps``."""
    factory = _kebab_factory if style == "kebab" else _snake_factory
    data: dict[str, Any] = dataclasses.asdict(model, dict_factory=factory)
    return data


def from_data(hint: type[_T], data: object, path: str, style: KeyStyle = "snake") -> _T:
    """``data`` checked against ``hint`` (a dataclass or a ``TypedDict``) and built."""
    value: _T = _read(hint, data, path, style)
    return value


@functools.cache
def tags(union: Any) -> dict[str, type[Any]]:
    """The members of a union of models, by the constant value of their ``kind`` field."""
    found: dict[str, type[Any]] = {}
    for member in get_args(union):
        for item in dataclasses.fields(member):
            if item.name == TAG and not item.init and isinstance(item.default, str):
                found[item.default] = member
    return found


# --------------------------------------------------------------------------- writing


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _snake_factory(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return {key: _plain(value) for key, value in pairs}


def _kebab_factory(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return {key.replace("_", "-"): _plain(value) for key, value in pairs if value is not None}


# --------------------------------------------------------------------------- reading

_NAMES: Mapping[type, str] = {
    str: "a string", bool: "a boolean", int: "an integer", float: "a number",
    list: "a list", dict: "an object", type(None): "null",
}


def _describe(value: object) -> str:
    if value is _MISSING:
        return "nothing"
    return next((name for kind, name in _NAMES.items() if type(value) is kind),
                type(value).__name__)


_MISSING = object()


def _fail(path: str, expected: str, value: object) -> FormatError:
    return FormatError(f"{path}: expected {expected}, found {_describe(value)}")


def _read(hint: Any, value: object, path: str, style: KeyStyle) -> Any:
    origin = get_origin(hint)
    if hint is Any:
        return value
    if origin is Literal:
        return _read_literal(get_args(hint), value, path)
    if origin is Union or origin is types.UnionType:
        return _read_union(hint, value, path, style)
    if origin is tuple or origin is list:
        item = get_args(hint)[0]
        if not isinstance(value, (list, tuple)):
            raise _fail(path, "a list", value)
        items = [_read(item, v, f"{path}[{i}]", style) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or origin is Mapping:
        item = get_args(hint)[1]
        return {k: _read(item, v, f"{path}[{json.dumps(k)}]", style)
                for k, v in _mapping(value, path).items()}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _read_model(hint, value, path, style)
    if is_typeddict(hint):
        return _read_typeddict(hint, value, path, style)
    if hint in (str, int, bool, float):
        return _read_scalar(hint, value, path)
    raise TypeError(f"packsync.serial cannot read {hint!r} (at {path})")


def _read_scalar(hint: type, value: object, path: str) -> object:
    if type(value) is hint or (hint is float and type(value) is int):
        return value
    raise _fail(path, _NAMES[hint], value)


def _read_literal(allowed: tuple[Any, ...], value: object, path: str) -> object:
    if any(type(value) is type(choice) and value == choice for choice in allowed):
        return value
    raise _not_one_of(allowed, value, path)


def _not_one_of(allowed: tuple[Any, ...], value: object, path: str) -> FormatError:
    listed = ", ".join(repr(choice) for choice in allowed)
    expected = f"one of {listed}" if len(allowed) > 1 else listed
    found = repr(value) if isinstance(value, (str, int)) else _describe(value)
    return FormatError(f"{path}: expected {expected}, found {found}")


def _read_union(hint: Any, value: object, path: str, style: KeyStyle) -> object:
    members = [m for m in get_args(hint) if m is not type(None)]
    if value is None and len(members) < len(get_args(hint)):
        return None
    if len(members) == 1:
        return _read(members[0], value, path, style)
    by_tag = tags(hint)
    data = _mapping(value, path)
    key = _key(TAG, style)
    kind = data.get(key, _MISSING)
    if not isinstance(kind, str) or kind not in by_tag:
        raise _not_one_of(tuple(by_tag), kind, f"{path}.{key}")
    return _read_model(by_tag[kind], data, path, style)


def _read_model(cls: Any, value: object, path: str, style: KeyStyle) -> Any:
    data = _mapping(value, path)
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for item in dataclasses.fields(cls):
        key = _key(item.name, style)
        where = f"{path}.{key}"
        found = data.get(key, _MISSING)
        if not item.init:  # a constant of the format
            _read_literal((item.default,), found, where)
        elif found is not _MISSING:
            values[item.name] = _read(hints[item.name], found, where, style)
        elif item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING:
            raise FormatError(f"{where}: missing")
    return cls(**values)


def _read_typeddict(hint: Any, value: object, path: str, style: KeyStyle) -> dict[str, Any]:
    data = _mapping(value, path)
    values: dict[str, Any] = {}
    for name, item in _hints(hint).items():
        key = _key(name, style)
        if key in data:
            values[name] = _read(item, data[key], f"{path}.{key}", style)
        elif name in hint.__required_keys__:
            raise FormatError(f"{path}.{key}: missing")
    return values


def _mapping(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(path, "an object", value)
    for key in value:
        if not isinstance(key, str):
            raise FormatError(f"{path}: a key is {_describe(key)}, not a string")
    return value


@functools.cache
def _hints(cls: Any) -> dict[str, Any]:
    return get_type_hints(cls)


def _key(name: str, style: KeyStyle) -> str:
    return name.replace("_", "-") if style == "kebab" else name


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
