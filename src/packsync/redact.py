"""Secrets never reach a log, an error or a file: URLs and texts lose their credentials here.

Index URLs, conda channels, Git remotes and uv's output all pass through these before
they are shown or stored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from urllib.parse import unquote, unquote_plus, urlsplit

from packsync.hostside.placeholders import VARIABLE as PLACEHOLDER_VALUES

_SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://")
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s,'\"<>]+")  # a comma ends it (uv's lists)


def userinfo_span(url: str) -> tuple[int, int] | None:
    """Where the userinfo of ``url`` is (start, end: the ``@``), or None.

    A password with an unencoded ``/``, ``?`` or ``#`` (``https://u:pa/ss@host/``) ends the
    authority early for a URL parser, which then sees no userinfo at all and would show the
    secret. Here ``user:rest`` before the first ``/`` is userinfo whenever ``rest`` is not
    a port, up to the next ``@``.
    """
    scheme = _SCHEME.match(url)
    if scheme is None:
        return None
    start = scheme.end()
    stop = min([i for i in (url.find(c, start) for c in "/?#") if i >= 0] or [len(url)])
    at = url.rfind("@", start, stop)
    if at >= 0:
        return start, at
    user, colon, rest = url[start:stop].partition(":")
    at = url.find("@", stop)
    if colon and user and not rest.isdigit() and at >= 0:
        return start, at
    return None


# an access token in a URL's path (Cloudsmith's /<token>/org/repo/, Gemfury's, anaconda.org's
# /t/<token>/): 16 or more letters, digits, - _ ~, with both letters and digits
_TOKEN_SEGMENT = re.compile(r"(?=[\w~-]*\d)(?=[\w~-]*[A-Za-z])[\w~-]{16,}", re.ASCII)
# a digest (Git's commit ids, the file hashes in PyPI's paths, SHA-256): not a secret
_DIGEST = re.compile(r"[0-9a-f]{40}|[0-9a-f]{60}|[0-9a-f]{64}")


def url_tokens(url: str) -> set[str]:
    """The secrets ``url`` holds besides its userinfo: every query value (``?token=``, a
    presigned URL's signature), and every path segment shaped like an access token."""
    segments, values = _written_tokens(url)
    return set(segments) | {unquote_plus(value) for value in values}


def written_url_tokens(url: str) -> list[str]:
    """The secrets ``url_tokens`` finds, as they are written in ``url`` (a query value
    still percent-encoded), in order of appearance: what a URL derived from it repeats."""
    segments, values = _written_tokens(url)
    return list(dict.fromkeys(segments + values))


def _written_tokens(url: str) -> tuple[list[str], list[str]]:
    parts = urlsplit(strip_userinfo(url))
    segments = [segment for segment in parts.path.split("/")
                if _TOKEN_SEGMENT.fullmatch(segment) and not _DIGEST.fullmatch(segment)]
    values = [value for _, equals, value in (p.partition("=") for p in parts.query.split("&"))
              if equals and len(unquote_plus(value)) >= 3]
    return segments, values


def redact_url(url: str) -> str:
    """``https://user:secret@host/x`` -> ``https://***@host/x``; tokens in the path or
    query become ``***`` too."""
    span = userinfo_span(url)
    if span is not None:
        url = f"{url[:span[0]]}***{url[span[1]:]}"
    for token in sorted(url_tokens(url), key=len, reverse=True):
        url = url.replace(token, "***")
    return url


def strip_userinfo(url: str) -> str:
    span = userinfo_span(url)
    return url if span is None else url[:span[0]] + url[span[1] + 1:]


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with URL userinfo and each known secret replaced by ``***``."""
    text = _URL.sub(lambda m: redact_url(m.group(0)), text)
    for secret in sorted({s for s in secrets if len(s) >= 3}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def urls_in(text: str) -> list[str]:
    """The URLs in ``text`` (whitespace- or comma-separated, as in uv's variables)."""
    return _URL.findall(text)


def secrets_in(uv_env: Mapping[str, str]) -> set[str]:
    """Every password or token in the URLs of uv's environment (to scrub output with)."""
    found: set[str] = set()
    for value in uv_env.values():
        for url in urls_in(value):
            span = userinfo_span(url)
            if span is not None:
                user, _, password = url[span[0]:span[1]].partition(":")
                raw = password or user
                found.update({raw, unquote(raw)})
            found.update(token for raw in url_tokens(url) for token in (raw, unquote(raw)))
    try:  # the tokens that stand in for a lock's placeholders
        values = json.loads(uv_env.get(PLACEHOLDER_VALUES) or "{}")
    except ValueError:
        values = {}
    if isinstance(values, dict):
        found.update(str(value) for value in values.values())
    return found
