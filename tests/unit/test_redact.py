"""URLs and texts lose their credentials before they are shown or stored."""

from __future__ import annotations

from packsync.redact import redact_text, redact_url, secrets_in, strip_userinfo


def test_redact_url_and_text():
    assert redact_url("https://u:p@h.example:8080/s") == "https://***@h.example:8080/s"
    assert redact_url("https://token@h.example/s") == "https://***@h.example/s"
    assert redact_url("https://h.example/s") == "https://h.example/s"
    text = "fetch https://u:pass-word@h.example/s failed; pass-word and pass%2Dword"
    assert redact_text(text, {"pass-word", "pass%2Dword"}) == (
        "fetch https://***@h.example/s failed; *** and ***")


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
