"""Live code updates without a cluster: what the client sends, what a host builds and forgets."""

from __future__ import annotations

import importlib
import os
import shutil
import sys

import pytest

from packsync.codesync.bundle import publish_code, unpack_code
from packsync.codesync.live import LiveCode
from packsync.codesync.plugin import apply_update
from packsync.scan.workdir import CodeRules
from packsync.store import open_store


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A working directory, a store and a cache, and a process state forgotten afterwards."""
    root = tmp_path / "work"
    root.mkdir()
    for name, text in {
        "helpers_ls.py": "def f():\n    return 1\n",
        "users_ls.py": "from helpers_ls import f\n\ndef g():\n    return f() * 10\n",
        "other_ls.py": "STATE = []\n",
    }.items():
        (root / name).write_text(text)
    monkeypatch.delitem(sys.modules, "_packsync_code_state", raising=False)
    yield root
    for name in ("helpers_ls", "users_ls", "other_ls", "_packsync_code_state"):
        sys.modules.pop(name, None)


def live_code(root, tmp_path):
    store = open_store(str(tmp_path / "store"))
    cache = tmp_path / "cache"
    bundle = publish_code([str(root)], store=store, rules=CodeRules())
    assert bundle is not None
    version = unpack_code(bundle, store=store, cache=cache)
    return LiveCode(roots=[str(root)], rules=CodeRules(), store=store, cache=cache,
                    bundle=bundle, version_dir=version)


def test_update_carries_only_changed_files_and_nothing_when_unchanged(work, tmp_path):
    live = live_code(work, tmp_path)
    assert live.next_update() is None
    (work / "helpers_ls.py").write_text("def f():\n    return 2\n")
    (work / "new_ls.py").write_text("N = 1\n")
    update = live.next_update()
    assert update is not None
    assert sorted(update.files) == ["helpers_ls.py", "new_ls.py"]
    assert sorted(update.manifest) == ["helpers_ls.py", "new_ls.py", "other_ls.py", "users_ls.py"]
    assert update.base == live.code_id and update.code_id != live.code_id
    assert live.store.has(update.sha256)  # hosts without the old version fetch it whole
    live.commit(update)
    assert live.next_update() is None
    (work / "new_ls.py").unlink()
    update = live.next_update()
    assert update is not None and update.files == {} and "new_ls.py" not in update.manifest


def test_host_builds_the_new_version_from_the_old_one_and_swaps_the_link(work, tmp_path):
    live = live_code(work, tmp_path)
    old = os.path.realpath(live.link)
    (work / "helpers_ls.py").write_text("def f():\n    return 2\n")
    update = live.next_update()
    assert update is not None
    applied = apply_update(update, link=str(live.link))
    new = os.path.realpath(live.link)
    assert new != old and os.path.basename(new) == update.code_id
    assert applied.written == ("helpers_ls.py",) and not applied.fetched
    assert os.stat(os.path.join(new, "other_ls.py")).st_ino == os.stat(
        os.path.join(old, "other_ls.py")).st_ino  # unchanged files are shared, not copied
    assert open(os.path.join(old, "helpers_ls.py")).read().endswith("return 1\n")  # intact
    again = apply_update(update, link=str(live.link))  # the other workers of this host
    assert again.written == () and again.dropped == ()


def test_host_without_the_old_version_fetches_the_bundle(work, tmp_path):
    live = live_code(work, tmp_path)
    (work / "helpers_ls.py").write_text("def f():\n    return 2\n")
    update = live.next_update()
    assert update is not None
    other_host = tmp_path / "other-host" / "code"
    (other_host / "live").mkdir(parents=True)
    (other_host / "stale").mkdir()
    link = other_host / "live" / "cluster"
    os.symlink(other_host / "stale", link)
    applied = apply_update(update, link=str(link))
    assert applied.fetched
    assert (link / "users_ls.py").read_text() == (work / "users_ls.py").read_text()
    assert (link / "helpers_ls.py").read_text().endswith("return 2\n")


def test_host_that_missed_syncs_builds_from_the_launch_version_without_the_store(
        work, tmp_path):
    live = live_code(work, tmp_path)
    launch = os.path.realpath(live.link)
    other_host = tmp_path / "other-host" / "code"
    (other_host / "live").mkdir(parents=True)
    shutil.copytree(launch, other_host / os.path.basename(launch))  # what the launch sent
    link = other_host / "live" / "cluster"
    os.symlink(other_host / os.path.basename(launch), link)

    (work / "helpers_ls.py").write_text("def f():\n    return 2\n")
    first = live.next_update()
    assert first is not None
    live.commit(first)  # applied where workers ran; this host had none then
    (work / "users_ls.py").write_text("from helpers_ls import f\n\ndef g():\n    return f()\n")
    second = live.next_update()
    assert second is not None
    assert sorted(second.files) == ["users_ls.py"]  # what running workers write
    assert sorted(second.since_launch) == ["helpers_ls.py"]  # what a late host lacks
    shutil.rmtree(tmp_path / "store")  # no store to fall back on, as without packsync
    applied = apply_update(second, link=str(link))
    assert not applied.fetched
    assert (link / "helpers_ls.py").read_text().endswith("return 2\n")
    assert (link / "users_ls.py").read_text().endswith("return f()\n")


def test_changed_modules_and_their_importers_are_forgotten_others_kept(work, tmp_path,
                                                                       monkeypatch):
    live = live_code(work, tmp_path)
    monkeypatch.syspath_prepend(str(live.link))
    import other_ls
    import users_ls
    assert users_ls.g() == 10 and users_ls.__file__.startswith(str(live.link))
    other_ls.STATE.append("kept")
    (work / "helpers_ls.py").write_text("def f():\n    return 2\n")
    update = live.next_update()
    assert update is not None
    applied = apply_update(update, link=str(live.link))
    assert applied.dropped == ("helpers_ls", "users_ls")
    assert importlib.import_module("users_ls").g() == 20
    assert importlib.import_module("other_ls").STATE == ["kept"]


def test_process_not_started_by_a_cluster_is_told_so(work, tmp_path, monkeypatch):
    live = live_code(work, tmp_path)
    (work / "helpers_ls.py").write_text("def f():\n    return 2\n")
    update = live.next_update()
    monkeypatch.delenv("PACKSYNC_CODE_LINK", raising=False)
    with pytest.raises(RuntimeError, match="PACKSYNC_CODE_LINK"):
        apply_update(update)


def test_versions_unused_for_the_expiry_are_pruned_unless_linked(work, tmp_path):
    first = live_code(work, tmp_path)
    first_version = os.path.realpath(first.link)
    (work / "helpers_ls.py").write_text("def f():\n    return 2\n")
    update = first.next_update()
    assert update is not None
    apply_update(update, link=str(first.link))
    old = tmp_path / "cache" / "code" / update.code_id / ".packsync-ready"
    os.utime(old, (0, 0))
    os.utime(os.path.join(first_version, ".packsync-ready"), (0, 0))
    (work / "helpers_ls.py").write_text("def f():\n    return 3\n")
    live_code(work, tmp_path)  # a new cluster prunes: the first one's link keeps its version
    assert old.exists()
    first.close()
    live_code(work, tmp_path)
    assert not old.exists() and not os.path.exists(first_version)


@pytest.mark.attack("live code path outside its directory")
@pytest.mark.parametrize("relpath", ["../escaped.py", "/etc/escaped.py", "a/../../x.py",
                                     "a//b.py", ".packsync-ready"])
def test_an_update_naming_a_path_outside_its_version_is_refused(work, tmp_path, relpath):
    import dataclasses

    live = live_code(work, tmp_path)
    (work / "helpers_ls.py").write_text("def f():\n    return 2\n")
    update = live.next_update()
    assert update is not None
    hostile = dataclasses.replace(update, manifest={**update.manifest, relpath: "0" * 64},
                                  files={**update.files, relpath: b"owned = True\n"})
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(ValueError, match="is not a file of the code directory"):
        apply_update(hostile, link=str(live.link))
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    with pytest.raises(ValueError, match="is not a version name"):
        apply_update(dataclasses.replace(update, code_id="../x"), link=str(live.link))
