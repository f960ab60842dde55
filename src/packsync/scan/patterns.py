"""Git-style path patterns: ``.gitignore`` files, and the ``include=``/``exclude=`` globs.

One syntax for both, so users need learn only Git's: ``*`` and ``?`` stay within a
path component, ``**`` crosses components, a pattern without a slash matches a name at
any depth, a leading or inner slash anchors it to its base directory, a trailing slash
matches directories only and ``!`` re-includes. No dependency, no subprocess: the
watcher polls with these rules, so they have to be cheap.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True, slots=True)
class Pattern:
    """One compiled pattern, matched against a path relative to ``base`` (posix form)."""

    text: str
    base: str
    regex: re.Pattern[str]
    negated: bool = False
    directory_only: bool = False

    def matches(self, path: str, *, is_dir: bool) -> bool:
        if self.directory_only and not is_dir:
            return False
        if self.base:
            if not path.startswith(self.base + os.sep):
                return False
            path = path[len(self.base) + 1 :]
        return self.regex.fullmatch(path.replace(os.sep, "/")) is not None


def compile_pattern(text: str, base: str = "") -> Pattern | None:
    """A pattern from one line of a ``.gitignore`` (or one glob); None for blanks/comments.

    ``base`` is the directory the pattern is relative to ("" when paths are given
    relative to that directory already).
    """
    line = text.rstrip("\n")
    if not line.endswith("\\ "):
        line = line.rstrip(" ")
    if not line or line.startswith("#"):
        return None
    negated = line.startswith("!")
    if negated:
        line = line[1:]
    elif line.startswith("\\!") or line.startswith("\\#"):
        line = line[1:]
    directory_only = line.endswith("/")
    line = line.rstrip("/")
    if not line:
        return None
    anchored = "/" in line
    line = line.lstrip("/")
    body = _translate(line)
    regex = re.compile(body if anchored else f"(?:.*/)?{body}")
    return Pattern(
        text=text.strip(),
        base=base.rstrip(os.sep),
        regex=regex,
        negated=negated,
        directory_only=directory_only,
    )


def compile_globs(globs: Iterable[str], base: str = "") -> tuple[Pattern, ...]:
    return tuple(p for p in (compile_pattern(g, base) for g in globs) if p is not None)


def read_ignore_file(path: str, base: str) -> tuple[Pattern, ...]:
    """The patterns of a ``.gitignore`` (or ``.git/info/exclude``); none if it is unreadable."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return compile_globs(handle.read().splitlines(), base)
    except OSError:
        return ()


def ignored(patterns: Sequence[Pattern], path: str, *, is_dir: bool) -> bool:
    """Git's rule: the last pattern that matches decides; ``!`` un-ignores."""
    decision = False
    for pattern in patterns:
        if pattern.matches(path, is_dir=is_dir):
            decision = not pattern.negated
    return decision


def any_match(patterns: Sequence[Pattern], path: str, *, is_dir: bool = False) -> bool:
    return any(p.matches(path, is_dir=is_dir) for p in patterns if not p.negated)


def _translate(glob: str) -> str:
    """A glob in Git's syntax as a regular expression over a ``/``-separated path."""
    out: list[str] = []
    i, n = 0, len(glob)
    while i < n:
        c = glob[i]
        if c == "*":
            if glob.startswith("**", i):
                before_ok = i == 0 or glob[i - 1] == "/"
                after = glob[i + 2 : i + 3]
                if before_ok and after == "/":
                    out.append("(?:.*/)?")
                    i += 3
                    continue
                if before_ok and after == "":
                    out.append(".*")
                    i += 2
                    continue
                out.append("[^/]*")
                i += 2
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = glob.find("]", i + 2 if glob[i + 1 : i + 2] in ("!", "^") else i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                inner = glob[i + 1 : end]
                if inner[:1] in ("!", "^"):
                    inner = "^" + inner[1:]
                out.append("[" + inner.replace("\\", "\\\\") + "]")
                i = end
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(glob[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)
