"""What uv's text output says went wrong: every pattern packsync reads in it, in one place.

uv reports failures as prose ("No solution found … because …", "Failed to fetch …",
hints), not as data. Build, lock, materialize and the hosts all run uv, so its wording
is read here only, against texts of real uv runs in ``tests/unit/test_uv_errors.py``:
when a uv release rewords a message, those tests say which meaning was lost.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

from packaging.utils import canonicalize_name

from packsync.errors import tail
from packsync.redact import redact_text, secrets_in, strip_userinfo

Kind = Literal["auth", "unreachable", "tls", "missing"]
ACCESS: tuple[Kind, ...] = ("auth", "unreachable", "tls")
"""Failures no other version or index order can fix: the index itself cannot be used."""

Unavailable = Literal["no-wheel", "yanked", "python", "no-version", "unknown"]
"""Why the resolver found no distribution of a required version."""

# "An index URL (…) could not be queried due to a lack of valid authentication credentials
# (401 Unauthorized)" and "An index (…) returned a 403 Forbidden error": uv's hints after a
# refused index page; "HTTP status client error (403 Forbidden) for url (…)": a refused file.
_AUTH = [
    re.compile(r"An index URL \((?P<url>[^)\s]+)\) could not be queried due to a lack of valid "
               r"authentication credentials \((?P<status>\d{3})"),
    re.compile(r"An index \((?P<url>[^)\s]+)\) returned a (?P<status>\d{3}) "),
    re.compile(r"HTTP status client error \((?P<status>401|403)[^)]*\) "
               r"for url \((?P<url>[^)\s]+)\)"),
]
# "Failed to fetch: URL" / "error sending request for url (URL)", then the cause in a later line
_FETCH = re.compile(r"(?:Failed to fetch|error sending request for url)[:( ]+"
                    r"(?P<url>[a-z+]+://[^)\s]+)")
_TLS = re.compile(r"invalid peer certificate|certificate verify|UnknownIssuer|received corrupt "
                  r"message|tls handshake|InvalidCertificate|CaUsedAsEndEntity", re.IGNORECASE)
_UNREACHABLE = re.compile(r"Connection refused|dns error|failed to lookup address|timed out|"
                          r"Network is unreachable|tcp connect error|connection reset",
                          re.IGNORECASE)
# the resolver's "Because X was not found in …" / "Because there is no version of X==1.0"
_MISSING = [
    re.compile(r"Because (?P<package>[A-Za-z0-9._-]+) was not found in the (?:package registry"
               r"|provided package locations)"),
    re.compile(r"Because there is no version of (?P<package>[A-Za-z0-9._-]+)"
               r"(?P<spec>[=<>!~][^ ]*)"),
]
# the package a failed download was for: uv's own line, the index page, or the file's name
_PACKAGE = [
    re.compile(r"Failed to download `(?P<package>[A-Za-z0-9._-]+)"),
    re.compile(r"Failed to fetch: \S+/simple/(?P<package>[A-Za-z0-9._-]+)/"),
    re.compile(r"/packages/(?:[^/\s]+/)*(?P<package>[A-Za-z0-9_.]+?)-\d[^/\s]*\.(?:whl|tar\.gz|zip)"),
]
# "… and you require X==1.0, we can conclude that your requirements are unsatisfiable."
_YOU_REQUIRE = re.compile(r"you require ([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass(frozen=True, kw_only=True, slots=True)
class IndexFailure:
    """What uv's output says went wrong with an index."""

    kind: Kind
    url: str = ""
    status: int = 0
    package: str = ""


def diagnose(output: str) -> IndexFailure | None:
    """The index failure in uv's ``output``, if that is what it is."""
    package = _package(output)
    for pattern in _AUTH:
        match = pattern.search(output)
        if match:
            return IndexFailure(kind="auth", url=strip_userinfo(match["url"]),
                                status=int(match["status"]), package=package)
    fetch = _FETCH.search(output)
    if fetch and _TLS.search(output):
        return IndexFailure(kind="tls", url=strip_userinfo(fetch["url"]), package=package)
    if fetch and _UNREACHABLE.search(output):
        return IndexFailure(kind="unreachable", url=strip_userinfo(fetch["url"]), package=package)
    for pattern in _MISSING:
        match = pattern.search(output)
        if match:
            spec = match.groupdict().get("spec") or ""
            return IndexFailure(kind="missing", package=match["package"] + spec)
    return None


def _package(output: str) -> str:
    for pattern in _PACKAGE:
        match = pattern.search(output)
        if match:
            return unquote(match["package"])
    match = _MISSING[0].search(output)
    return match["package"] if match else ""


def failing_package(output: str) -> str | None:
    """The package uv's "No solution found" names as the one required and impossible."""
    found = _YOU_REQUIRE.search(output)
    return canonicalize_name(found.group(1)) if found else None


def why_unavailable(output: str) -> Unavailable:
    """Why uv's resolver found nothing for a required version, as its output tells."""
    if "no wheels with a matching" in output:  # platform, ABI or implementation tag
        return "no-wheel"
    if "yanked" in output:
        return "yanked"
    if "depends on Python" in output:
        return "python"
    if "there is no version of" in output:
        return "no-version"
    return "unknown"


def scrubbed_tail(output: str, uv_env: Mapping[str, str]) -> str:
    """The last lines of uv's output, without any credential."""
    return tail(redact_text(output, secrets_in(uv_env)))
