"""URLs and texts lose their credentials before they are shown or stored."""

from __future__ import annotations

from packsync.redact import redact_text, redact_url


def test_redact_url_and_text():
    assert redact_url("https://u:p@h.example:8080/s") == "https://***@h.example:8080/s"
    assert redact_url("https://token@h.example/s") == "https://***@h.example/s"
    assert redact_url("https://h.example/s") == "https://h.example/s"
    text = "fetch https://u:pass-word@h.example/s failed; pass-word and pass%2Dword"
    assert redact_text(text, {"pass-word", "pass%2Dword"}) == (
        "fetch https://***@h.example/s failed; *** and ***")
