"""A cluster holds its environment's lease while it is open, not for the life of the
process: the last use of an environment in a process gives the lease back, and the
environment can then be collected while the process goes on."""

from __future__ import annotations

import time
from pathlib import Path

from packsync.hostside import lease, lifecycle
from tests.support.caches import make_ready


def expired_env(cache: Path) -> Path:
    path = cache / "envs" / "e"
    path.mkdir(parents=True)
    make_ready(path, text="# e\n", used=time.time() - 48 * 3600)
    return path


def test_the_lease_is_held_until_the_last_use_ends(tmp_path: Path) -> None:
    path = str(expired_env(tmp_path))
    first, second = lease.Use(path), lease.Use(path)
    try:
        assert lease.in_use(path)
        first.end()
        first.end()  # a second end of one use changes nothing
        assert lease.in_use(path)
        assert lifecycle.collect(str(tmp_path))["removed"] == []
    finally:
        second.end()
    assert not lease.in_use(path) and not lease.holds(path)
    removed = lifecycle.collect(str(tmp_path))["removed"]
    assert [r["env_id"] for r in removed] == ["e"]


def test_a_materialized_environment_is_let_go_with_its_last_cluster(tmp_path: Path) -> None:
    path = str(expired_env(tmp_path))
    lease.hold(path)  # as materialize does, before the cluster's use begins
    use = lease.Use(path)
    assert lease.in_use(path)
    use.end()
    assert not lease.in_use(path)
    assert [r["env_id"] for r in lifecycle.collect(str(tmp_path))["removed"]] == ["e"]
