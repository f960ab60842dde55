"""uv's per-index settings (``authenticate``, ``ignore-error-codes``, ``cache-control``,
``format``), which no variable can carry, handed to uv in a configuration file.

uv's environment names the indexes (``UV_DEFAULT_INDEX``, ``UV_INDEX``, ``UV_FIND_LINKS``,
credentials in their URLs) and, when some index has settings, describes them under
``VARIABLE``: JSON, a list of ``{"url": …, "name": …, "format": …, <uv's keys>}`` whose URLs hold no
userinfo and their tokens as lock placeholders, so it is no secret. uv reads an index's
settings only from the ``[[index]]`` table that defines it (an index given by a variable
too is taken from the variable, without them), so ``configured`` moves every index of the
variables, in their order, into ``[[index]]`` tables of a file: URLs without userinfo,
credentials as ``UV_INDEX_<NAME>_USERNAME`` / ``_PASSWORD`` beside it (an index without
a uv name gets one, ``packsync-<n>``). A URL whose path
carries an access token keeps it, as the live lock does: the file is owner-only, in a
private directory named by the process, removed as soon as the block ends; the
directories of processes that died first (a job killed at its walltime) are removed by
the next one of the user's on the machine.

Standard library only: hosts run this module too.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from packsync.hostside import placeholders
from packsync.hostside.protocol import HostError

VARIABLE = "PACKSYNC_INDEX_OPTIONS"
DIRECTORY_PREFIX = "packsync-uv-"
_MOVED = ("UV_DEFAULT_INDEX", "UV_INDEX")


@contextlib.contextmanager
def configured(env: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """uv's environment ``env``, its indexes moved into a configuration file
    (``UV_CONFIG_FILE``) when ``VARIABLE`` gives per-index settings; ``env`` as it is
    otherwise. The file is removed when the block ends."""
    described = _described(env.get(VARIABLE, ""))
    result = {k: v for k, v in env.items() if k != VARIABLE}
    if not described:
        yield result
        return
    text, variables = config_text(env, described)
    for key in _MOVED:
        result.pop(key, None)
    links = [u for u in env.get("UV_FIND_LINKS", "").split(",") if u]
    kept = [u for u in links if _settings_of(u, described, "flat") is None]
    if kept:
        result["UV_FIND_LINKS"] = ",".join(kept)
    else:
        result.pop("UV_FIND_LINKS", None)
    result.update(variables)
    remove_orphans()
    directory = tempfile.mkdtemp(prefix=f"{DIRECTORY_PREFIX}{os.getpid()}-")  # mode 0700
    try:
        path = os.path.join(directory, "uv.toml")
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        result["UV_CONFIG_FILE"] = path
        yield result
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def remove_orphans() -> None:
    """The configuration directories this user's processes left when they died."""
    try:
        entries = list(os.scandir(tempfile.gettempdir()))
    except OSError:
        return
    for entry in entries:
        pid = entry.name[len(DIRECTORY_PREFIX):].partition("-")[0]
        if not entry.name.startswith(DIRECTORY_PREFIX) or not pid.isdigit() or _alive(int(pid)):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid():
            shutil.rmtree(entry.path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True


def config_text(env: Mapping[str, str],
                described: list[dict[str, Any]]) -> tuple[str, dict[str, str]]:
    """The ``[[index]]`` tables of the indexes in ``env`` with their settings, and the
    variables that carry their credentials."""
    entries: list[tuple[str, str, str]] = []  # name, live URL, format
    for entry in env.get("UV_INDEX", "").split():
        name, url = split_named(entry)
        entries.append((name, url, "simple"))
    for url in (u for u in env.get("UV_FIND_LINKS", "").split(",") if u):
        if _settings_of(url, described, "flat") is not None:
            entries.append(("", url, "flat"))
    default = split_named(env["UV_DEFAULT_INDEX"]) if env.get("UV_DEFAULT_INDEX") else None
    taken = {name for name, _, _ in entries} | ({default[0]} if default else set())
    tables: list[str] = []
    variables: dict[str, str] = {}
    rows = [(n, u, f, False) for n, u, f in entries]
    if default is not None:
        rows.append((default[0], default[1], "simple", True))
    number = 0
    for given, url, form, is_default in rows:
        name = given or str((_settings_of(url, described, form) or {}).get("name", ""))
        while not name:
            number += 1
            name = f"packsync-{number}" if f"packsync-{number}" not in taken else ""
        taken.add(name)
        parts = urlsplit(url)
        plain = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
        if parts.username is not None:
            prefix = index_prefix(name)
            variables[f"{prefix}USERNAME"] = unquote(parts.username)
            variables[f"{prefix}PASSWORD"] = unquote(parts.password or "")
        lines = ["[[index]]", f"name = {_quoted(name)}", f"url = {_quoted(plain)}"]
        if is_default:
            lines.append("default = true")
        if form == "flat":
            lines.append('format = "flat"')
        for key, value in (_settings_of(url, described, form) or {}).items():
            if key != "name":
                lines.append(f"{key} = {_value(value)}")
        tables.append("\n".join(lines) + "\n")
    return "\n".join(tables), variables


def index_prefix(name: str) -> str:
    """The prefix of uv's variables for the index named ``name``: ``my-index`` ->
    ``UV_INDEX_MY_INDEX_`` (then ``USERNAME``, ``PASSWORD``, ``URL``)."""
    return "UV_INDEX_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper() + "_"


def split_named(entry: str) -> tuple[str, str]:
    """``name=URL`` (uv's syntax) -> (name, URL); a bare URL has no name."""
    name, sep, url = entry.partition("=")
    if sep and ":" not in name and "/" not in name:
        return name, url
    return "", entry


def _described(raw: str) -> list[dict[str, Any]]:
    if not raw:
        return []
    try:
        rows = json.loads(raw)
    except ValueError:
        rows = None
    if not isinstance(rows, list) or not all(
            isinstance(r, dict) and isinstance(r.get("url"), str) for r in rows):
        raise HostError(f"{VARIABLE} is not a JSON list of index settings", kind="protocol")
    return rows


def _settings_of(url: str, described: list[dict[str, Any]], form: str) -> dict[str, Any] | None:
    """uv's settings of the index at the live ``url`` (its described URL matches it,
    userinfo aside and tokens as placeholders), or None when it has none."""
    for row in described:
        if row.get("format", "simple") != form:
            continue
        masked = str(row["url"])
        if placeholders.values_from(masked.rstrip("/"), url.rstrip("/")) is not None:
            return {k: v for k, v in row.items() if k not in ("url", "format")}
    return None


def _quoted(text: str) -> str:
    return json.dumps(text)  # a JSON string is a TOML basic string


def _value(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return _quoted(str(value))
