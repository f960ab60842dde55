"""Git-style path patterns: ``.gitignore`` files, and the ``include=``/``exclude=`` globs.

One syntax for both, so users need learn only Git's, and one implementation of it:
pathspec's ``GitIgnoreSpec`` (``*``, ``?`` and ``[...]`` within a path component, ``**``
across them, anchoring by a leading or inner slash, directory-only patterns, ``!``
re-inclusion, and the cases where Git does other than its manual says).

What stays here is what pathspec leaves to its caller. A set of patterns belongs to a
directory (a ``.gitignore`` applies below its own directory, relative to it), several sets
apply to one path, and the deepest set with a matching pattern decides, as Git has it.
A line Git would skip (an invalid pattern) is skipped in a ``.gitignore`` and refused,
named, in ``include=``/``exclude=``. pathspec is imported by the first pattern compiled:
a working directory without ``.gitignore`` files or globs does not pay for it.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from packsync.errors import ScanError

if TYPE_CHECKING:
    from pathspec import GitIgnoreSpec

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True, slots=True)
class Patterns:
    """The patterns of one ``.gitignore`` (or one list of globs), for paths below a directory.

    ``prefix`` is that directory and a separator, which paths are given with in front;
    ``""`` when paths are given relative to the patterns' directory already.
    """

    prefix: str
    spec: GitIgnoreSpec

    def decide(self, path: str, *, is_dir: bool) -> bool | None:
        """True: the last pattern that matches ``path`` ignores it; False: it re-includes
        it (``!``); None: no pattern matches (or ``path`` is not below the directory)."""
        if self.prefix:
            if not path.startswith(self.prefix):
                return None
            path = path[len(self.prefix) :]
        result: bool | None = self.spec.check_file(path + "/" if is_dir else path).include
        return result

    def matches(self, path: str, *, is_dir: bool = False) -> bool:
        return self.decide(path, is_dir=is_dir) is True


def compile_globs(globs: Iterable[str], base: str = "") -> Patterns | None:
    """The user's ``include=``/``exclude=`` globs; None when there are none.

    An invalid glob is a ``ScanError`` naming it.
    """
    return _compile_globs(tuple(globs), base)


@lru_cache(maxsize=64)
def _compile_globs(globs: tuple[str, ...], base: str) -> Patterns | None:
    # the watcher walks with the same globs on every poll: they are compiled once

    def refuse(line: str, error: Exception) -> None:
        raise ScanError(
            f"{line!r} is not a Git-style pattern: {error}",
            hint="fix the glob in include=/exclude= (or dask config packsync.include / "
            "packsync.exclude); patterns follow .gitignore syntax",
        )

    return _compile(globs, base, refuse)


def read_ignore_file(path: str, base: str) -> Patterns | None:
    """The patterns of a ``.gitignore`` (or ``.git/info/exclude``); None if it is unreadable
    or has none. Lines Git would skip are skipped (and logged)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None

    def skip(line: str, error: Exception) -> None:
        logger.debug("%s: skipping %r, not a pattern Git accepts: %s", path, line, error)

    return _compile(lines, base, skip)


def ignored(chain: Sequence[Patterns], path: str, *, is_dir: bool) -> bool:
    """Git's rule over ``chain``, outermost set first: the deepest set with a pattern that
    matches decides, by its last such pattern; ``!`` un-ignores."""
    for patterns in reversed(chain):
        decision = patterns.decide(path, is_dir=is_dir)
        if decision is not None:
            return decision
    return False


def matches(patterns: Patterns | None, path: str, *, is_dir: bool = False) -> bool:
    """Whether ``patterns`` (None: no globs) select ``path``."""
    return patterns is not None and patterns.matches(path, is_dir=is_dir)


def _compile(
    lines: Iterable[str], base: str, invalid: Callable[[str, Exception], None]
) -> Patterns | None:
    texts = [line for line in lines if line.strip() and not line.startswith("#")]
    if not texts:
        return None  # nothing to match: no need of pathspec
    from pathspec import GitIgnoreSpec

    try:
        spec = GitIgnoreSpec.from_lines(texts)
    except (ValueError, re.error):  # one by one then, so that a bad line loses no other
        valid = []
        for line in texts:
            try:
                GitIgnoreSpec.from_lines([line])
            except (ValueError, re.error) as error:
                invalid(line, error)
            else:
                valid.append(line)
        spec = GitIgnoreSpec.from_lines(valid)
    if all(p.include is None for p in spec.patterns):
        return None
    prefix = base.rstrip(os.sep) + os.sep if base else ""
    return Patterns(prefix=prefix, spec=spec)
