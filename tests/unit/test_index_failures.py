"""uv's index failures (its real output, captured from uv 0.13) become errors naming index,
package and fix; what each text means is checked on live uv output in ``test_uv_errors``."""

from __future__ import annotations

import base64
import http.server
import pickle

import pytest

from packsync.errors import LockError, MaterializeError
from packsync.lock.index_failures import explain, probe_indexes
from packsync.scan.index_config import Index
from packsync.scan.indexes import IndexSettings
from packsync.uv_errors import ACCESS
from tests.support import servers
from tests.support.servers import serve_http

NOT_FOUND = ("error: No solution found when resolving dependencies\n  cause: Because "
             "psprivate-probe was not found in the package registry and you require "
             "psprivate-probe==1.0.0, we can conclude that your requirements are unsatisfiable.\n")
FORBIDDEN = NOT_FOUND + (
    "\nhint: An index (http://127.0.0.1:49575/simple/) returned a 403 Forbidden error. Check "
    "that the index URL is correct and the credentials are valid.\n")
DOWNLOAD_FORBIDDEN = (
    "error: Failed to download `psprivate-probe==1.0.0`\n"
    "  cause: Failed to fetch: http://127.0.0.1:49575/packages/psprivate_probe-1.0.0-py3-none-any.whl\n"
    "  cause: HTTP status client error (403 Forbidden) for url (http://127.0.0.1:49575/packages/"
    "psprivate_probe-1.0.0-py3-none-any.whl)\n")
REFUSED = (
    "error: Request failed after 3 retries in 7.5s\n"
    "  cause: Failed to fetch: http://127.0.0.1:1/simple/psprivate-probe/\n"
    "  cause: error sending request for url (http://127.0.0.1:1/simple/psprivate-probe/)\n"
    "  cause: client error (Connect)\n  cause: tcp connect error\n"
    "  cause: Connection refused (os error 111)\n")
TLS = (
    "error: Failed to fetch: https://127.0.0.1:49777/simple/psprivate-probe/\n"
    "  cause: error sending request for url (https://127.0.0.1:49777/simple/psprivate-probe/)\n"
    "  cause: client error (Connect)\n"
    "  cause: invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))\n")
NO_VERSION = ("error: No solution found when resolving dependencies\n  cause: Because there is "
              "no version of psprivate-probe==2.0 and you require psprivate-probe==2.0, we can "
              "conclude that your requirements are unsatisfiable.\n")


def uv_env(url: str, **environ: str) -> dict[str, str]:
    settings = IndexSettings(
        indexes=(Index(url="https://pypi.org/simple", role="default", origin="default"),
                 Index(url=url, role="extra", origin="$UV_INDEX", name="corp")),
        environ={"HOME": "/nonexistent", "NETRC": "/nonexistent", **environ},
    )
    return settings.uv_environment()


def test_refused_credentials_name_index_and_source_never_the_secret():
    env = uv_env("http://127.0.0.1:49575/simple/", UV_INDEX_CORP_USERNAME="alice",
                 UV_INDEX_CORP_PASSWORD="hunter2-secret")
    output = FORBIDDEN + "retrying http://alice:hunter2-secret@127.0.0.1:49575/simple/\n"
    error = explain(output, env, LockError, action="resolving the environment")
    assert isinstance(error, LockError)
    text = str(error)
    assert "http://127.0.0.1:49575/simple/ [corp] (from $UV_INDEX)" in text
    assert "$UV_INDEX_CORP_USERNAME/$UV_INDEX_CORP_PASSWORD" in text and "403" in text
    assert error.package == "psprivate-probe"
    assert "hunter2-secret" not in text and "hunter2-secret" not in repr(error)
    assert "hunter2-secret" not in str(pickle.loads(pickle.dumps(error)))


def test_missing_credentials_say_how_to_provide_them():
    error = explain(DOWNLOAD_FORBIDDEN.replace("403 Forbidden", "401 Unauthorized"),
                    uv_env("http://127.0.0.1:49575/simple/"), MaterializeError,
                    action="installing environment abc", digest="d" * 64)
    assert isinstance(error, MaterializeError) and error.digest == "d" * 64
    assert "needs credentials and none were found" in error.message
    assert "127.0.0.1:49575" in error.message and "psprivate-probe" in error.message
    assert "netrc" in error.hint and "keyring" in error.hint and "UV_INDEX_<NAME>" in error.hint


def test_unreachable_tls_and_missing_name_index_and_package():
    refused = explain(REFUSED, uv_env("http://127.0.0.1:1/simple/"), LockError, action="resolving")
    assert refused is not None and "cannot be reached" in refused.message
    assert "http://127.0.0.1:1/simple/ [corp]" in refused.message
    assert refused.package == "psprivate-probe"
    tls = explain(TLS, uv_env("https://127.0.0.1:49777/simple/"), LockError, action="resolving")
    assert tls is not None and "TLS" in tls.message and "127.0.0.1:49777" in tls.message
    missing = explain(NO_VERSION, uv_env("http://127.0.0.1:1/simple/"), LockError,
                      action="resolving", kinds=("missing",))  # no probe of the indexes
    assert missing is not None and missing.package == "psprivate-probe==2.0"
    assert "https://pypi.org/simple" in missing.message and "127.0.0.1:1" in missing.message


def test_probe_asks_each_index_with_its_credentials_when_uv_says_not_found():
    """uv's unsafe-best-match strategy reports a 401 as "not found"; a probe tells them apart."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.headers.get("Authorization", ""))
            good = "Basic " + base64.b64encode(b"alice:right").decode()
            code = 404 if self.path.startswith("/open/") else (
                200 if self.headers.get("Authorization") == good else 403)
            self.send_response(code)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with serve_http(Handler, threaded=False) as base:
        env = {"UV_DEFAULT_INDEX": f"{base}/open/",
               "UV_INDEX": base.replace("http://", "http://alice:wrong@") + "/private/simple/"}
        found = probe_indexes("psprivate-probe==1.0.0", env)
        assert found is not None and (found.kind, found.status) == ("auth", 403)
        assert found.url == f"{base}/private/simple/"
        assert seen[-1] == "Basic " + base64.b64encode(b"alice:wrong").decode()
        env["UV_INDEX"] = env["UV_INDEX"].replace("wrong", "right")
        assert probe_indexes("psprivate-probe", env) is None
        error = explain(NOT_FOUND, {**env, "UV_INDEX": env["UV_INDEX"].replace("right", "x")},
                        LockError, action="resolving", kinds=ACCESS)
        assert error is not None and "403" in error.message and "refused" in error.message
        assert explain(NOT_FOUND, env, LockError, action="resolving", kinds=ACCESS) is None


@pytest.mark.attack("credentials sent across a redirect")
def test_a_probe_never_sends_credentials_to_the_origin_an_index_redirects_to():
    with servers.collector(threaded=False) as (collector, collected):
        seen: list[str] = []

        class Redirecting(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                seen.append(self.headers.get("Authorization", ""))
                # first to the index's own origin (the credentials follow), then elsewhere
                there = (f"/again{self.path}" if not self.path.startswith("/again")
                         else f"{collector}{self.path}")
                self.send_response(302)
                self.send_header("Location", there)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        with serve_http(Redirecting, threaded=False) as base:
            env = {"UV_INDEX": base.replace("http://", "http://alice:s3cret@") + "/simple/"}
            probe_indexes("psprivate-probe", env)
    good = "Basic " + base64.b64encode(b"alice:s3cret").decode()
    assert seen == [good, good]  # a redirect within the index keeps them
    assert collected == [""]  # the other origin got nothing
