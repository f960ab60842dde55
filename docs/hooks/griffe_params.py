"""Griffe extension: one row per parameter where a numpy docstring groups several.

``n_workers, threads_per_worker:`` documents both at once. Griffe gives such a group the
type and default of its first name, which is wrong when they differ; here the first name
keeps the description and each other one points to it, so every row takes its own type
and default from the signature. Only the rendered page changes, never the source.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

GROUP = re.compile(r"(?P<indent>\s*)(?P<names>[A-Za-z_]\w*(?:,\s*[A-Za-z_]\w*)+)\s*:?\s*")
UNDERLINE = re.compile(r"\s*-{3,}\s*")


def split_groups(text: str) -> str:
    """``text`` with each grouped entry of its Parameters sections split by name."""
    lines = text.splitlines()
    out: list[str] = []
    in_parameters = False
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if index < len(lines) and UNDERLINE.fullmatch(lines[index]):
            in_parameters = line.strip() in ("Parameters", "Other Parameters")
        match = GROUP.fullmatch(line) if in_parameters else None
        if match is None:
            out.append(line)
            continue
        indent = match["indent"]
        first, *others = (name.strip() for name in match["names"].split(","))
        out.append(f"{indent}{first}")
        while index < len(lines) and (
            not lines[index].strip() or lines[index].startswith(indent + " ")
        ):
            out.append(lines[index])
            index += 1
        blank = out[-1] == ""
        if blank:
            out.pop()
        out += [line for name in others for line in (f"{indent}{name}",
                                                       f"{indent}    See ``{first}``.")]
        if blank:
            out.append("")
    return "\n".join(out)


class SplitGroupedParameters(griffe.Extension):
    """Applies ``split_groups`` to every docstring as it is loaded."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = split_groups(obj.docstring.value)
