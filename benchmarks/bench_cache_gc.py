"""What ``packsync cache gc`` costs on a cache of 20 environments, against ``rm -rf``.

The environments are real: one materialized by packsync (httpx and its dependencies, about
two thousand files with byte code), cloned 19 times with hard links (as uv links files from
its cache) and each made ready with a lock of its own. Timed as whole processes: (a)
``packsync cache gc`` when every environment expired (it removes all 20), against (b)
``rm -rf`` of the same directories, and ``packsync cache gc`` when nothing is due (the
scan alone) and ``packsync cache list``. Target (printed): a/b ≤ 2.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_launch import verdict
from rich.console import Console
from rich.table import Table

from packsync.hostside import contents, layout

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.support

from tests.support.caches import digest_of, small_lock_text  # noqa: E402
from tests.support.processes import run  # noqa: E402
from tests.support.venvs import hermetic_env  # noqa: E402

ENVIRONMENTS = 20
RUNS = 3
TARGET = 2.0
PACKSYNC = str(Path(sys.executable).with_name("packsync"))


def materialized(tmp: Path) -> Path:
    """One real environment in ``tmp/cache``, materialized by ``packsync materialize``."""
    text = small_lock_text(tmp)
    (tmp / "pylock.toml").write_text(text)
    _, out = run([PACKSYNC, "materialize", str(tmp / "pylock.toml"), "--cache-dir",
                  str(tmp / "cache")], hermetic_env(), tmp)
    return Path(out.strip().splitlines()[-1]).parents[1]


def fill(cache: Path, source: Path, used: float) -> list[Path]:
    """``ENVIRONMENTS`` ready environments in ``cache``, last used at ``used``."""
    made = []
    for index in range(ENVIRONMENTS):
        text = f"# environment {index}\n"
        path = cache / "envs" / digest_of(text)[:32]
        shutil.copytree(source, path, symlinks=True, copy_function=os.link,
                        ignore=shutil.ignore_patterns(layout.READY_MARKER))
        (path / layout.RECORD_DIR / "pylock.toml").unlink()
        (path / layout.RECORD_DIR / "pylock.toml").write_text(text)
        contents.mark_ready(str(path), digest_of(text))
        os.utime(path / layout.READY_MARKER, (used, used))
        made.append(path)
    return made


def timed(command: list[str], cwd: Path) -> float:
    seconds, _ = run(command, hermetic_env(), cwd)
    return seconds


def main(runs: int = RUNS) -> int:
    console = Console()
    tmp = Path(tempfile.mkdtemp(prefix="packsync-bench-gc-"))
    try:
        console.print("materializing one environment …")
        source = materialized(tmp)
        files = len(contents.walk(str(source)))
        gc, rm, scan, listing = [], [], [], []
        cache = tmp / "bench-cache"
        for _ in range(runs):
            fill(cache, source, time.time() - 48 * 3600)
            gc.append(timed([PACKSYNC, "cache", "gc", "--cache-dir", str(cache)], tmp))
            assert not [p for p in (cache / "envs").iterdir() if p.is_dir()]
            made = fill(cache, source, time.time() - 48 * 3600)
            rm.append(timed(["rm", "-rf", *map(str, made)], tmp))
            shutil.rmtree(cache)
        fill(cache, source, time.time() - 3600)
        for _ in range(runs):
            scan.append(timed([PACKSYNC, "cache", "gc", "--cache-dir", str(cache)], tmp))
            listing.append(timed([PACKSYNC, "cache", "list", "--cache-dir", str(cache)], tmp))
        noop = timed([PACKSYNC, "--help"], tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    a, b = statistics.median(gc), statistics.median(rm)
    table = Table("a / b", "a", "b", "a/b", "target", "met",
                  title=f"packsync cache gc of {ENVIRONMENTS} environments ({files} files each)")
    table.add_row("cache gc removing all / rm -rf of the same", f"{a:.2f} s", f"{b:.2f} s",
                  f"{a / b:.2f}x", f"≤ {TARGET}x", verdict(a <= TARGET * b))
    table.add_row("cache gc, nothing due / packsync --help", f"{statistics.median(scan):.2f} s",
                  f"{noop:.2f} s", f"{statistics.median(scan) / noop:.2f}x", "", "")
    table.add_row("cache list / packsync --help", f"{statistics.median(listing):.2f} s",
                  f"{noop:.2f} s", f"{statistics.median(listing) / noop:.2f}x", "", "")
    console.print(table)
    console.print(f"medians of {runs} runs; whole processes (interpreter start and imports "
                  "included)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*(int(a) for a in sys.argv[1:2])))
