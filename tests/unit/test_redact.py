"""URLs and texts lose their credentials before they are shown or stored."""

from __future__ import annotations

import pytest

from packsync.redact import (
    redact_text,
    redact_url,
    secrets_in,
    strip_userinfo,
    url_tokens,
)


def test_redact_url_and_text():
    assert redact_url("https://u:p@h.example:8080/s") == "https://***@h.example:8080/s"
    assert redact_url("https://token@h.example/s") == "https://***@h.example/s"
    assert redact_url("https://h.example/s") == "https://h.example/s"
    text = "fetch https://u:pass-word@h.example/s failed; pass-word and pass%2Dword"
    assert redact_text(text, {"pass-word", "pass%2Dword"}) == (
        "fetch https://***@h.example/s failed; *** and ***")


@pytest.mark.attack("redaction of unusual URL passwords")
def test_a_password_with_unencoded_slash_query_or_hash_is_still_hidden():
    for password in ("pa/ss", "pa?ss", "pa#ss", "/lead", "a@b"):
        url = f"https://alice:{password}@idx.example/simple/"
        assert redact_url(url) == "https://***@idx.example/simple/", password
        assert strip_userinfo(url) == "https://idx.example/simple/", password
        shown = redact_text(f"uv failed for {url}, then {url}")
        assert password not in shown and shown.count("https://***@idx.example/simple/") == 2
        assert secrets_in({"UV_INDEX": f"corp={url}"}) >= {password}
    # a port, or an @ in the path, is no userinfo
    for url in ("https://idx.example:8443/simple/", "https://idx.example/v@1/simple/",
                "https://idx.example:8443/p@1/"):
        assert redact_url(url) == strip_userinfo(url) == url


@pytest.mark.attack("tokens in an index URL's path or query")
def test_tokens_in_an_index_urls_path_or_query_are_secrets():
    cases = {
        "https://dl.cloudsmith.io/AbCdEf1234567890/org/repo/python/simple/":
            "https://dl.cloudsmith.io/***/org/repo/python/simple/",
        "https://pypi.fury.io/q1W2e3R4t5Y6u7I8o9/acme/":
            "https://pypi.fury.io/***/acme/",
        "https://conda.anaconda.org/t/ab-1234567890abcdefgh/corp":
            "https://conda.anaconda.org/t/***/corp",
        "https://idx.example/simple/?token=sekrit-42": "https://idx.example/simple/?token=***",
        "https://idx.example/0123456789abcdef0123456789abcdef/simple/":  # 32 hex digits
            "https://idx.example/***/simple/",
    }
    for url, shown in cases.items():
        assert redact_url(url) == shown
        token = next(iter(url_tokens(url)))
        assert token not in redact_text(f"uv: cannot fetch {url}")
        assert token in secrets_in({"UV_INDEX": f"corp={url}"})
    # digests, versions, ordinary names are no tokens
    for url in ("https://files.pythonhosted.org/packages/ab/cd/0123456789abcdef0123456789abcdef"
                "0123456789abcdef0123456789ab/httpx-0.28.1-py3-none-any.whl",
                "https://download.pytorch.org/whl/cu124/", "https://idx.example/python-packages/"):
        assert redact_url(url) == url and not url_tokens(url)
