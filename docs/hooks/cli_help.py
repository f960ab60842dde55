"""MkDocs hook: ``<!-- packsync-help: plan -->`` becomes the output of ``packsync plan --help``.

The command-line reference is read from the parser itself at build time, so it cannot
drift from the code. Help is rendered 80 columns wide, in this process, offline.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from typing import Any

MARKER = re.compile(r"<!--\s*packsync-help:(?P<args>[^>]*?)\s*-->")


def help_text(args: list[str]) -> str:
    """What ``packsync ARGS --help`` prints."""
    from packsync.cli import main

    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "80"
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            main([*args, "--help"])
    finally:
        if previous is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = previous
    text = out.getvalue().rstrip()
    if not text.startswith("usage:"):
        raise ValueError(f"`packsync {' '.join(args)} --help` printed no usage")
    return text


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    def replace(match: re.Match[str]) -> str:
        return "```text\n" + help_text(match["args"].split()) + "\n```"

    return MARKER.sub(replace, markdown)
