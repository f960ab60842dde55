"""Each meaning packsync reads in uv's text, checked on what the installed uv really prints.

The texts come from real ``uv pip compile`` runs against a tiny local index (a ``file://``
simple index and a find-links directory of hand-made wheels) and a loopback HTTP server
that refuses, serves plain HTTP to TLS, or lets a download fail. Only the DNS failure is a
captured text (uv 0.13.9): producing it needs a name server. A uv release that rewords a
message fails here, naming the meaning that was lost.
"""

from __future__ import annotations

import http.server
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from packsync.uv_errors import diagnose, failing_package, scrubbed_tail, why_unavailable
from packsync.uvtool import run_uv
from tests.support.projects import make_wheel
from tests.support.servers import serve_http

LINUX = "py3-none-any"
MAC_ONLY = "py3-none-macosx_11_0_arm64"
CP312_ONLY = "cp312-cp312-manylinux_2_28_x86_64"

DNS = (  # uv 0.13.9, an index on a host name that does not resolve
    "error: Request failed after 3 retries in 11.7s\n"
    "  cause: Failed to fetch: http://nonexistent.invalid/simple/psprivate-probe/\n"
    "  cause: client error (Connect)\n  cause: dns error\n  cause: error resolving DNS\n")


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``links/``: probe 1.2.0 (any platform) and 1.2.3 (macOS only); ``simple/``: a PEP 503
    index of probe adding 1.2.5 (Python >= 3.12 only) and 1.2.6 (CPython 3.12 only)."""
    root = tmp_path_factory.mktemp("uv-local")
    links = root / "links"
    links.mkdir()
    make_wheel(links, "probe", "1.2.0", LINUX)
    make_wheel(links, "probe", "1.2.3", MAC_ONLY)
    project = root / "simple" / "probe"
    project.mkdir(parents=True)
    anchors = []
    for version, tag, requires in [("1.2.0", LINUX, ""), ("1.2.3", MAC_ONLY, ""),
                                   ("1.2.5", LINUX, "&gt;=3.12"), ("1.2.6", CP312_ONLY, "")]:
        name = make_wheel(project, "probe", version, tag).name
        attribute = f' data-requires-python="{requires}"' if requires else ""
        anchors.append(f'<a href="{name}"{attribute}>{name}</a>')
    (project / "index.html").write_text("<html><body>" + "\n".join(anchors) + "</body></html>")
    (root / "simple" / "index.html").write_text('<html><body><a href="probe/">probe</a></body></html>')
    return root


class _Index(http.server.BaseHTTPRequestHandler):
    """``/401/…`` and ``/403/…`` refuse; under ``/files/`` the page of probe is served but
    its wheel is refused."""

    def do_GET(self) -> None:  # noqa: N802
        if self.path.startswith("/files/simple/probe/"):
            body = (b'<html><body><a href="/files/packages/probe-1.0-py3-none-any.whl">'
                    b"probe-1.0-py3-none-any.whl</a></body></html>")
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(401 if self.path.startswith("/401/") else 403)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """The base URL of a loopback HTTP server running ``_Index``."""
    with serve_http(_Index) as base:
        yield base.removeprefix("http://")


def uv_says(tmp_path: Path, requirement: str, *sources: str, deps: bool = False) -> str:
    """What ``uv pip compile`` prints (stdout and stderr) failing to lock ``requirement``."""
    (tmp_path / "requirements.txt").write_text(requirement + "\n")
    result = run_uv(
        ["pip", "compile", "requirements.txt", *([] if deps else ["--no-deps"]), "--quiet",
         "--format", "pylock.toml", "--output-file", "pylock.toml", "--no-cache",
         "--python-platform", "x86_64-manylinux_2_28", "--python-version", "3.11", *sources],
        extra_env={"UV_HTTP_RETRIES": "0"},  # the same messages, without seconds of retries
        cwd=str(tmp_path),
    )
    assert result.returncode != 0, result.stdout
    return result.stdout


def file_index(local: Path) -> list[str]:
    return ["--index-url", (local / "simple").as_uri()]


def find_links(local: Path) -> list[str]:
    return ["--no-index", "--find-links", str(local / "links")]


def test_a_version_without_a_wheel_for_the_platform(local: Path, tmp_path: Path) -> None:
    said = uv_says(tmp_path, "probe==1.2.3", *find_links(local))
    assert failing_package(said) == "probe"
    assert why_unavailable(said) == "no-wheel"
    assert diagnose(said) is None  # the index answered: nothing to explain about it


def test_a_version_with_wheels_for_another_python_only(local: Path, tmp_path: Path) -> None:
    said = uv_says(tmp_path, "probe==1.2.6", *file_index(local))
    assert (failing_package(said), why_unavailable(said)) == ("probe", "no-wheel")


def test_a_version_that_requires_a_newer_python(local: Path, tmp_path: Path) -> None:
    said = uv_says(tmp_path, "probe==1.2.5", *file_index(local))
    assert (failing_package(said), why_unavailable(said)) == ("probe", "python")
    assert diagnose(said) is None


def test_a_version_the_index_does_not_have(local: Path, tmp_path: Path) -> None:
    said = uv_says(tmp_path, "probe==9.9", *file_index(local))
    assert (failing_package(said), why_unavailable(said)) == ("probe", "no-version")
    missing = diagnose(said)
    assert missing is not None and (missing.kind, missing.package) == ("missing", "probe==9.9")


@pytest.mark.parametrize("where", ["index", "find-links"])
def test_a_package_nobody_has(where: str, local: Path, tmp_path: Path) -> None:
    sources = file_index(local) if where == "index" else find_links(local)
    said = uv_says(tmp_path, "Nobody_Has==1.0", *sources)
    assert failing_package(said) == "nobody-has"
    assert why_unavailable(said) == "unknown"
    missing = diagnose(said)
    assert missing is not None and (missing.kind, missing.package) == ("missing", "nobody-has")


@pytest.mark.parametrize("status", [401, 403])
def test_an_index_that_refuses(status: int, server: str, tmp_path: Path) -> None:
    url = f"http://{server}/{status}/simple"
    refused = diagnose(uv_says(tmp_path, "probe==1.0", "--default-index", url))
    assert refused is not None
    assert (refused.kind, refused.status, refused.url, refused.package) == (
        "auth", status, url, "probe")


def test_a_refusal_hidden_by_unsafe_best_match_reads_as_missing(server: str,
                                                                tmp_path: Path) -> None:
    """Why ``index_failures.explain`` asks the indexes themselves after a "not found"."""
    said = uv_says(tmp_path, "probe==1.0", "--default-index", f"http://{server}/401/simple",
                   "--index-strategy", "unsafe-best-match")
    hidden = diagnose(said)
    assert hidden is not None and (hidden.kind, hidden.package) == ("missing", "probe")


def test_a_refused_download_names_the_file_and_its_package(server: str, tmp_path: Path) -> None:
    said = uv_says(tmp_path, "probe==1.0", "--default-index", f"http://{server}/files/simple",
                   deps=True)  # the metadata of the wheel is needed: uv downloads it
    refused = diagnose(said)
    assert refused is not None
    assert (refused.kind, refused.status, refused.package) == ("auth", 403, "probe")
    assert refused.url == f"http://{server}/files/packages/probe-1.0-py3-none-any.whl"


def test_plain_http_where_tls_is_expected(server: str, tmp_path: Path) -> None:
    failure = diagnose(uv_says(tmp_path, "probe==1.0", "--default-index",
                               f"https://{server}/200/simple"))
    assert failure is not None
    assert (failure.kind, failure.url, failure.package) == (
        "tls", f"https://{server}/200/simple/probe/", "probe")


def test_an_index_nobody_listens_on(tmp_path: Path) -> None:
    with socket.socket() as bound:  # bound, never listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{bound.getsockname()[1]}/simple"
        failure = diagnose(uv_says(tmp_path, "probe==1.0", "--default-index", url))
    assert failure is not None and (failure.kind, failure.url) == ("unreachable",
                                                                   f"{url}/probe/")
    dns = diagnose(DNS)
    assert dns is not None and (dns.kind, dns.package) == ("unreachable", "psprivate-probe")


def test_the_tail_keeps_uv_words_and_drops_every_credential(server: str,
                                                           tmp_path: Path) -> None:
    url = f"http://alice:p%40ss-w0rd@{server}/401/simple"
    said = uv_says(tmp_path, "probe==1.0", "--default-index", url)
    said += f"retrying {url}: saw p@ss-w0rd and p%40ss-w0rd\n"  # as a verbose log might
    tail = scrubbed_tail(said, {"UV_DEFAULT_INDEX": url})
    assert "p@ss-w0rd" not in tail and "p%40ss-w0rd" not in tail
    assert f"http://***@{server}/401/simple" in tail and "(401 Unauthorized)" in tail
