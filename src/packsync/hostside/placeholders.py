"""Index tokens in a lock: a placeholder on disk, the live value only where uv installs it.

An index URL that carries an access token in its path or query (Cloudsmith's
``https://dl.cloudsmith.io/<token>/org/repo/python/simple/``, Gemfury's, ``?token=``)
makes uv write that token into every file URL of the lock it resolves. The lock packsync
keeps, stores and ships holds ``{packsync-secret:<label>}`` instead, the label naming
the index (``corp-1``: the first token of the index ``corp``); the values travel beside
the lock, never in it, under ``VARIABLE`` in uv's environment (in memory on the client,
the SSH channel's stdin to a host). ``live_lock`` writes the restored lock, owner-only,
for the one ``uv pip sync`` that reads it, and removes it right after.

Standard library only: hosts run this module too.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from urllib.parse import urlsplit, urlunsplit

from packsync.hostside.protocol import HostError

VARIABLE = "PACKSYNC_LOCK_SECRETS"
"""uv's environment carries the tokens of the lock's placeholders here: JSON, label -> value."""
LIVE_LOCK = "pylock.live.toml"  # beside the lock, where its ``wheels/`` paths point

_PLACEHOLDER = re.compile(r"\{packsync-secret:([a-z0-9][a-z0-9-]*)\}")  # labels: a-z 0-9 -


def placeholder(label: str) -> str:
    return "{packsync-secret:" + label + "}"


def labels_in(text: str) -> list[str]:
    """The labels of the placeholders in ``text``, each once, in order of appearance."""
    return list(dict.fromkeys(_PLACEHOLDER.findall(text)))


def _template(masked: str) -> re.Pattern[str]:
    """A pattern matching the live URLs of the masked URL ``masked``, one group per
    placeholder (named by its label)."""
    pattern, seen = "", set()
    for index, part in enumerate(_PLACEHOLDER.split(masked)):
        if index % 2 == 0:
            pattern += re.escape(part)
        elif part in seen:
            pattern += f"(?P={_group(part)})"
        else:
            seen.add(part)
            pattern += f"(?P<{_group(part)}>[^/?#&]+)"
    return re.compile(pattern)


def _group(label: str) -> str:
    return "g_" + label.replace("-", "_")


def values_from(masked: str, live: str) -> dict[str, str] | None:
    """label -> value of each placeholder of ``masked``, read from its live URL ``live``
    (userinfo aside); None when ``live`` does not have the masked URL's form."""
    parts = urlsplit(live)
    plain = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    found = _template(masked).fullmatch(plain)
    if found is None:
        return None
    return {label: found.group(_group(label)) for label in labels_in(masked)}


def split_environment(uv_env: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """uv's environment without the placeholders' values, and those values (label ->
    value): uv needs none of them as a variable."""
    env = {k: v for k, v in uv_env.items() if k != VARIABLE}
    try:
        values = json.loads(uv_env.get(VARIABLE) or "{}")
    except ValueError:
        values = None
    if not isinstance(values, dict):
        raise HostError(f"{VARIABLE} is not a JSON object of index tokens", kind="protocol")
    return env, {str(k): str(v) for k, v in values.items()}


def restore(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each placeholder replaced by its value; a ``HostError`` naming the
    indexes whose token this machine was not given."""
    missing = [label for label in labels_in(text) if label not in values]
    if missing:
        raise HostError(
            "the lock refers to index tokens that this machine was not given: "
            + ", ".join(placeholder(m) for m in missing)
            + "; configure the index with its full URL (the token included) as when the "
            "lock was made", kind="secret")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def mask(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each value of ``values`` (label -> value) replaced by its placeholder,
    in one pass (a value is never looked for inside a placeholder just written)."""
    labels = {value: label for label, value in values.items() if len(value) >= 3}
    if not labels:
        return text
    pattern = "|".join(re.escape(v) for v in sorted(labels, key=len, reverse=True))
    return re.sub(pattern, lambda m: placeholder(labels[m.group(0)]), text)


@contextlib.contextmanager
def live_lock(written: str, text: str, values: Mapping[str, str]) -> Iterator[str]:
    """The lock file ``uv pip sync`` installs: ``written`` (which holds ``text``) when
    ``text`` has no placeholder, else ``text`` restored in an owner-only file beside it
    (the lock's ``wheels/`` paths are relative to it), removed when the block ends."""
    if not labels_in(text):
        yield written
        return
    restored = restore(text, values)
    path = os.path.join(os.path.dirname(written), LIVE_LOCK)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # a crashed build's: never read, never trusted
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(restored)
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
