"""Index tokens out of a lock: each becomes the placeholder that names its index.

uv writes the URL of every file it resolved, and the URL of its index, into the lock;
behind an index whose URL carries a token (``IndexSettings.lock_tokens``) each of those
holds the token. Every URL of the document is masked before the lock is rendered, so
the text packsync keeps, stores, ships and names the environment by holds none, and the
digest does not change when the token does. ``hostside.placeholders`` puts the values
back where uv installs the lock.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from packsync.errors import LockError
from packsync.hostside import placeholders
from packsync.hostside.protocol import HostError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def mask_document(document: Any, tokens: Mapping[str, str]) -> Any:
    """``document`` (a parsed lock) with each token in its URLs replaced by its placeholder."""
    if isinstance(document, str):
        return placeholders.mask(document, tokens) if "://" in document else document
    if isinstance(document, dict):
        return {key: mask_document(value, tokens) for key, value in document.items()}
    if isinstance(document, list):
        return [mask_document(value, tokens) for value in document]
    return document


def mask_text(text: str, tokens: Mapping[str, str]) -> str:
    """A lock written with live URLs (``packsync lock --live-urls``) as packsync keeps it:
    the same text it was rendered from, placeholders in place of the tokens. A text
    without any of the tokens is returned as it is."""
    if not any(len(value) >= 3 and value in text for value in tokens.values()):
        return text
    import tomli_w

    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return text  # Lock.from_text says what is wrong with it
    return tomli_w.dumps(mask_document(document, tokens))


def unmask(text: str, tokens: Mapping[str, str], origin: str) -> str:
    """The lock with its placeholders replaced by the live tokens (for plain uv); a
    ``LockError`` naming the placeholders no configured index gives."""
    try:
        return placeholders.restore(text, tokens)
    except HostError as error:
        raise LockError(f"cannot write {origin} with live URLs: {error}", path=origin,
                        hint="configure each index with its full URL, the token included"
                        ) from None
