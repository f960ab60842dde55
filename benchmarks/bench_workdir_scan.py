"""How long finding the working directory's code takes, against a bare walk of the same tree.

The tree is a Git work tree of 2,000 ``.py`` files in nested packages, with a root
``.gitignore`` and one in every package, as a project's would be; ``walk_code`` runs on every
launch and on every poll of the live-code watcher. The baseline is ``os.walk`` with one
``stat`` per file, the least any walk that reports sizes and times can do. Printed, not
asserted.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from packsync.scan.workdir import CodeRules, walk_code  # noqa: E402

PACKAGES, SUBPACKAGES, MODULES = 20, 10, 10
RUNS = 15
ROOT_IGNORE = """\
# generated and scratch files
*.log
__generated__/
/scratch/
secret_*.py
!secret_ok.py
data/**
**/gen_*.py
"""


def make_tree(root: Path) -> int:
    """The tree; the number of files in it."""
    (root / ".git").mkdir()
    (root / ".gitignore").write_text(ROOT_IGNORE)
    count = 0
    for p in range(PACKAGES):
        package = root / f"pkg{p}"
        package.mkdir()
        (package / "__init__.py").write_text("")
        (package / ".gitignore").write_text("/local_*.py\n*.tmp\n")
        for s in range(SUBPACKAGES):
            sub = package / f"sub{s}"
            sub.mkdir()
            for m in range(MODULES):
                name = ("gen_" if m == 0 else "secret_" if m == 1 else "mod_") + f"{m}.py"
                (sub / name).write_text("X = 1\n")
                count += 1
    return count


def bare_walk(root: str) -> int:
    found = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            os.stat(os.path.join(dirpath, name))
            found += 1
    return found


def median_seconds(call: object, runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        call()  # type: ignore[operator]
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> int:
    console = Console()
    with tempfile.TemporaryDirectory(prefix="packsync-bench-walk-") as tmp:
        root = Path(tmp) / "project"
        root.mkdir()
        files = make_tree(root)
        rules = CodeRules()
        rules_globs = CodeRules(include=("data/*.csv",), exclude=("pkg1*/", "*_9.py"))
        shipped = len(walk_code(str(root), rules))
        shipped_globs = len(walk_code(str(root), rules_globs))
        walk = median_seconds(lambda: walk_code(str(root), rules), RUNS)
        walk_globs = median_seconds(lambda: walk_code(str(root), rules_globs), RUNS)
        bare = median_seconds(lambda: bare_walk(str(root)), RUNS)
    table = Table("a / b", "a", "b", "a/b", title=f"working-directory walk, {files} files")
    table.add_row("walk_code (.gitignore files) / os.walk + stat",
                  f"{walk * 1000:.1f} ms", f"{bare * 1000:.1f} ms", f"{walk / bare:.2f}x")
    table.add_row("walk_code (+ include/exclude) / os.walk + stat",
                  f"{walk_globs * 1000:.1f} ms", f"{bare * 1000:.1f} ms",
                  f"{walk_globs / bare:.2f}x")
    console.print(table)
    console.print(f"{shipped} files shipped ({shipped_globs} with the globs); medians of {RUNS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
