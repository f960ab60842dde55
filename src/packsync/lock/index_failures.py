"""uv failed talking to an index: say which index, which package, and what to do.

uv's own message buries the cause under "No solution found" (a 401 becomes "package
not found" plus a hint line). ``packsync.uv_errors`` recognises in uv's output the
failures that concern an index (refused credentials, unreachable host, TLS failure, a
package or version the index does not have); this module asks the indexes themselves
when uv's words hide a refusal, and builds an error naming the index (redacted), the
package, whether credentials were found and where, and how to fix it. The description
of the indexes comes from ``PACKSYNC_INDEX_SOURCES`` in the same environment uv ran
with, so a host explains a failure without the client's files. Every log tail it
returns is scrubbed of the secrets in that environment.
"""

from __future__ import annotations

import base64
import json
import re
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.utils import canonicalize_name

from packsync.errors import PacksyncError
from packsync.redact import strip_userinfo, urls_in, userinfo_span
from packsync.scan.indexes import SOURCES_VARIABLE
from packsync.uv_errors import ACCESS, IndexFailure, Kind, diagnose, scrubbed_tail


def explain(
    output: str,
    uv_env: Mapping[str, str],
    error: type[PacksyncError],
    *,
    action: str,
    kinds: tuple[Kind, ...] = ("auth", "unreachable", "tls", "missing"),
    **fields: str,
) -> PacksyncError | None:
    """An ``error`` explaining an index failure in ``output``, or ``None`` if it is not one.

    ``action`` says what uv was doing ("resolving the environment", "installing …");
    ``kinds`` which failures to explain (a resolver that retries other versions leaves
    "missing" to itself).
    """
    failure = diagnose(output)
    if failure is not None and failure.kind == "missing" and set(kinds) & set(ACCESS):
        # uv's unsafe-best-match strategy reports a refused index as "not found": ask them.
        failure = probe_indexes(failure.package, uv_env) or failure
    if failure is None or failure.kind not in kinds:
        return None
    log_tail = scrubbed_tail(output, uv_env)
    source = _matching_source(failure.url, uv_env)
    where = _name(failure.url, source)
    package = failure.package or fields.pop("package", "")
    fields.pop("package", None)
    about = f" for {package}" if package else ""
    if failure.kind == "auth":
        status = {401: "401 Unauthorized", 403: "403 Forbidden"}.get(failure.status,
                                                                     str(failure.status))
        found = (source or {}).get("credentials", "") or _sent_credentials(failure.url, uv_env)
        host = _host(failure.url)
        if found:
            message = (f"the index {where} refused the credentials found in {found} "
                       f"({status}) while {action}{about}")
            hint = (f"the username, password or token for {host} in {found} is wrong or "
                    f"lacks access; correct it there and launch again")
        else:
            message = (f"the index {where} needs credentials and none were found ({status}) "
                       f"while {action}{about}")
            hint = (f"give credentials for {host}: a ~/.netrc line `machine "
                    f"{urlsplit(failure.url).hostname} login USER password SECRET` (or $NETRC), "
                    f"the keyring (`keyring set {strip_userinfo(failure.url)} USER`), "
                    f"UV_INDEX_<NAME>_USERNAME/_PASSWORD for a named uv index, or user:secret@ "
                    f"in the configured URL; packsync never stores them")
    elif failure.kind == "unreachable":
        message = f"the index {where} cannot be reached while {action}{about}"
        hint = "check the host name, port and network route to the index from this machine"
    elif failure.kind == "tls":
        message = (f"the TLS connection to the index {where} failed (certificate not "
                   f"trusted or not TLS) while {action}{about}")
        hint = ("check the URL's scheme (http/https) and that the index's certificate is "
                "trusted here (SSL_CERT_FILE, or uv's native-tls setting)")
    else:
        indexes = ", ".join(s["url"] for s in _sources(uv_env)) or "the configured indexes"
        message = f"{package} is not available from {indexes} while {action}"
        hint = ("the package or this version is on none of these indexes: check "
                "`packsync indexes` lists the index it came from, or ignore the package")
    return error(message, hint=hint, package=package, log_tail=log_tail, **fields)


def probe_indexes(package: str, uv_env: Mapping[str, str]) -> IndexFailure | None:
    """Ask each index of ``uv_env`` for ``package``'s page, as uv would, with its credentials.

    The first index that refuses, cannot be reached or fails TLS is the failure.
    """
    name = re.split(r"[=<>!~;\[ ]", package, maxsplit=1)[0]
    if not name:
        return None
    urls = [uv_env.get("UV_DEFAULT_INDEX", ""), *uv_env.get("UV_INDEX", "").split()]
    for url in filter(None, urls):
        if not url.startswith(("http://", "https://")):
            continue
        plain = strip_userinfo(url)
        page = plain.rstrip("/") + f"/{canonicalize_name(name)}/"
        request = urllib.request.Request(page, headers={"Accept": "text/html"})
        parts = urlsplit(url)
        if parts.username is not None:
            userinfo = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            token = base64.b64encode(userinfo.encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            _OPENER.open(request, timeout=15).close()
        except urllib.error.HTTPError as error:
            if error.code in (401, 403):
                return IndexFailure(kind="auth", url=plain, status=error.code, package=package)
        except urllib.error.URLError as error:
            kind: Kind = "tls" if isinstance(error.reason, ssl.SSLError) else "unreachable"
            return IndexFailure(kind=kind, url=plain, package=package)
        except (OSError, ValueError):
            return IndexFailure(kind="unreachable", url=plain, package=package)
    return None


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects, but sends an index's credentials only to the index's own origin
    (scheme, host and port), as uv does: a redirect elsewhere gets no Authorization."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str,
                         headers: Any, newurl: str) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and _origin(newurl) != _origin(req.full_url):
            new.remove_header("Authorization")
        return new


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


_OPENER = urllib.request.build_opener(_SameOriginRedirects)


def _sources(uv_env: Mapping[str, str]) -> list[dict[str, str]]:
    try:
        rows = json.loads(uv_env.get(SOURCES_VARIABLE, "[]"))
    except json.JSONDecodeError:
        return []
    return [r for r in rows if isinstance(r, dict)]


def _sent_credentials(url: str, uv_env: Mapping[str, str]) -> str:
    """Without a description of the indexes: were credentials in uv's URLs for this host?"""
    for configured in urls_in(" ".join(uv_env.values())):
        if userinfo_span(configured) is not None and _host(strip_userinfo(configured)) == _host(
                url):
            return "the configured URL"
    return ""


def _host(url: str) -> str:
    return urlsplit(url).netloc.rsplit("@", 1)[-1]


def _matching_source(url: str, uv_env: Mapping[str, str]) -> dict[str, str] | None:
    """The configured index that ``url`` (an index page or a file on its host) belongs to."""
    if not url:
        return None
    rows = _sources(uv_env)
    plain = strip_userinfo(url)
    for row in rows:  # the index whose URL prefixes the failed one
        if plain.startswith(strip_userinfo(row.get("url", "")).rstrip("/")):
            return row
    for row in rows:  # else one on the same host (files live beside /simple)
        if _host(strip_userinfo(row.get("url", ""))) == _host(plain):
            return row
    return None


def _name(url: str, source: Mapping[str, str] | None) -> str:
    if source is None:
        return strip_userinfo(url) or "(unknown index)"
    name = f" [{source['name']}]" if source.get("name") else ""
    return f"{source['url']}{name} (from {source.get('origin', '?')})"
