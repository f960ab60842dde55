"""Watching the code roots: watchfiles when it can, polling when it cannot, and settings."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import dask.config
import pytest

from packsync.codesync.live import LiveCode
from packsync.errors import LaunchError
from packsync.launch.watcher import (
    CodeWatcher,
    choose_method,
    filesystem_type,
    travelling_filter,
    watch_settings,
)
from packsync.scan.workdir import CodeRules
from packsync.store import open_store

WAIT = 30.0  # seconds a save may take to be noticed on a loaded machine: a bound, not a target


def live_code(roots: list[Path], tmp_path: Path) -> LiveCode:
    return LiveCode(roots=[str(r) for r in roots], rules=CodeRules(),
                    store=open_store(str(tmp_path / "store")), cache=tmp_path / "cache",
                    bundle=None, version_dir=None)


def save(path: Path, text: str) -> None:
    """As editors save: a new file renamed over the old one."""
    path.with_suffix(".tmp").write_text(text)
    os.replace(path.with_suffix(".tmp"), path)


async def watch_saves(live: LiveCode, root: Path, interval: float, method: str = "auto"):
    """Start a watcher that counts syncs; save a module; how it watched, and the syncs."""
    syncs: list[float] = []
    synced = asyncio.Event()

    async def sync() -> None:
        syncs.append(asyncio.get_running_loop().time())
        synced.set()

    watcher = CodeWatcher(live, sync, interval=interval, method=method)  # type: ignore[arg-type]
    watcher.start()
    try:
        await asyncio.wait_for(synced.wait(), WAIT)  # the first check: the first touched() is True
        synced.clear()
        save(root / "helpers.py", "X = 2\n")
        await asyncio.wait_for(synced.wait(), WAIT)
        synced.clear()
        (root / "notes.txt").write_text("not code\n")  # an event, but nothing that travels
        (root / ".git").mkdir()
        (root / ".git" / "index").write_text("x")
        save(root / "helpers.py", "X = 3\n")  # the change after them is seen alone
        await asyncio.wait_for(synced.wait(), WAIT)
        return watcher.method, watcher.describe(), len(syncs)
    finally:
        await watcher.close()


def test_a_save_is_synced_through_watchfiles(tmp_path):
    root = tmp_path / "work"
    root.mkdir()
    (root / "helpers.py").write_text("X = 1\n")
    live = live_code([root], tmp_path)
    method, describe, syncs = asyncio.run(watch_saves(live, root, interval=0.5))
    assert (method, describe) == ("watchfiles", "watchfiles")
    assert syncs == 3


def test_polling_takes_over_when_watchfiles_cannot_watch(tmp_path, caplog):
    root = tmp_path / "work"  # removed since the scan: nothing to watch, something to poll
    live = live_code([root], tmp_path)

    async def check() -> tuple[str, str]:
        synced = asyncio.Queue[None]()

        async def sync() -> None:
            synced.put_nowait(None)

        watcher = CodeWatcher(live, sync, interval=0.2)
        watcher.start()
        try:
            await asyncio.wait_for(synced.get(), WAIT)  # the first check
            root.mkdir()
            save(root / "helpers.py", "X = 1\n")
            await asyncio.wait_for(synced.get(), WAIT)
            return watcher.method, watcher.describe()
        finally:
            await watcher.close()

    assert asyncio.run(check()) == ("polling", "polling every 0.2 s")
    assert "watching code with watchfiles failed (No path was found.)" in caplog.text


def test_polling_when_asked(tmp_path):
    root = tmp_path / "work"
    root.mkdir()
    (root / "helpers.py").write_text("X = 1\n")
    live = live_code([root], tmp_path)
    method, _, syncs = asyncio.run(watch_saves(live, root, interval=0.2, method="polling"))
    assert (method, syncs) == ("polling", 3)


def test_a_failed_sync_is_logged_and_watching_goes_on(tmp_path, caplog):
    from packsync.errors import SyncError

    root = tmp_path / "work"
    root.mkdir()
    (root / "helpers.py").write_text("X = 1\n")
    live = live_code([root], tmp_path)

    async def check() -> int:
        calls = asyncio.Queue[int]()

        async def sync() -> None:
            calls.put_nowait(1)
            raise SyncError("code version abc could not be applied on worker", hint="fix it")

        watcher = CodeWatcher(live, sync, interval=0.2)
        watcher.start()
        try:
            await asyncio.wait_for(calls.get(), WAIT)
            save(root / "helpers.py", "X = 2\n")
            return await asyncio.wait_for(calls.get(), WAIT)
        finally:
            await watcher.close()

    assert asyncio.run(check()) == 1
    assert "code not synced: code version abc could not be applied" in caplog.text


def test_choose_method():
    assert choose_method(["/"], "polling") == ("polling", "packsync.watch-method is 'polling'")
    assert choose_method([], "auto")[0] == "polling"
    assert choose_method([os.getcwd()], "auto") == ("watchfiles", "")


MOUNTINFO = r"""22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 27 0:40 / /home rw,relatime shared:2 - ext4 /dev/sda2 rw
41 40 0:41 / /home/alice/shared rw,relatime shared:3 master:1 - nfs4 server:/export rw,vers=4.2
42 40 0:42 / /home/alice/my\040docs rw - fuse.sshfs alice@box: rw
43 40 0:43 / /home/alice/shared rw - tmpfs tmpfs rw
"""


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/home/alice/project", "ext4"),
        ("/home/alice/shared/project", "tmpfs"),  # a later mount over the same point wins
        ("/home/alice/sharedness", "ext4"),  # a prefix of a mount point is not below it
        ("/home/alice/my docs/x", "fuse.sshfs"),  # octal escapes in mount points
        ("/srv", "ext4"),
        ("/proc/self", "proc"),
    ],
)
def test_filesystem_type_is_the_deepest_mount(path, kind):
    assert filesystem_type(path, MOUNTINFO) == kind


def test_polling_on_a_network_filesystem():
    nfs_only = "\n".join(line for line in MOUNTINFO.splitlines() if "tmpfs" not in line)
    assert filesystem_type("/home/alice/shared/project", nfs_only) == "nfs4"
    method, reason = choose_method(["/home/alice/project", "/home/alice/shared/project"],
                                   "auto", nfs_only)
    assert method == "polling"
    assert reason.startswith("/home/alice/shared/project is on nfs4, where saves made on "
                             "another machine raise no event here")
    assert choose_method(["/home/alice/project"], "auto", nfs_only) == ("watchfiles", "")
    assert filesystem_type("/x", "garbage line\n") is None


def test_travelling_filter_drops_hidden_and_pycache_folders_below_a_root():
    keep = travelling_filter(["/home/u/.hidden/work", "/srv/code"])
    assert keep(None, "/home/u/.hidden/work/helpers.py")  # hidden above the root is fine
    assert keep(None, "/home/u/.hidden/work/pkg/mod.py")
    assert keep(None, "/home/u/.hidden/work/.gitignore")  # a hidden file may change what goes
    assert not keep(None, "/home/u/.hidden/work/.git/index")
    assert not keep(None, "/srv/code/pkg/__pycache__/mod.cpython-311.pyc")
    assert not keep(None, "/srv/code/.venv/lib/x.py")


def test_watch_settings_from_arguments_and_config():
    with dask.config.set({"packsync.watch": True, "packsync.watch-interval": "2s"}):
        settings = watch_settings(None)
        assert (settings.enabled, settings.interval, settings.method) == (True, 2.0, "auto")
        assert not watch_settings(False).enabled
    assert watch_settings(None).enabled is False
    assert watch_settings(True).interval == 0.5
    with dask.config.set({"packsync.watch-method": "polling"}):
        assert watch_settings(True).method == "polling"
    with dask.config.set({"packsync.watch-method": "inotify"}), pytest.raises(
        LaunchError, match="packsync.watch-method"
    ) as raised:
        watch_settings(True)
    assert "'auto' or 'polling'" in str(raised.value)
