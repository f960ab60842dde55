"""Secrets never reach a log, an error or a file: URLs and texts lose their credentials here.

Index URLs, conda channels, Git remotes and uv's output all pass through these before
they are shown or stored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import unquote, urlsplit, urlunsplit


def redact_url(url: str) -> str:
    """``https://user:secret@host/x`` -> ``https://***@host/x``."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def strip_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


_USERINFO = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^\s/@]+@")


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with URL userinfo and each known secret replaced by ``***``."""
    text = _USERINFO.sub(r"\1***@", text)
    for secret in sorted({s for s in secrets if len(s) >= 3}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


# the userinfo of each URL in a text; a comma ends it (uv joins find-links with commas)
URL_USERINFO = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://(?P<userinfo>[^\s/@,]+)@")


def secrets_in(uv_env: Mapping[str, str]) -> set[str]:
    """Every password or token in the URLs of uv's environment (to scrub output with)."""
    found: set[str] = set()
    for value in uv_env.values():
        for match in URL_USERINFO.finditer(value):
            user, _, password = match["userinfo"].partition(":")
            raw = password or user
            found.update({raw, unquote(raw)})
    return found
