"""A host collects its unused environments with the client's ``packsync.cache-expiry``
and ``packsync.cache-max-size``, sent in the prepare header, not with its own defaults."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pytest

from packsync.hostside import lifecycle, main
from tests.support.caches import make_ready
from tests.unit.test_hostside_prepare import archive, events, header


def planted(cache: Path, name: str, *, hours_ago: float) -> Path:
    path = cache / "envs" / name
    path.mkdir(parents=True)
    (path / "blob").write_bytes(b"x" * 4000)
    make_ready(path, text=f"# {name}\n", used=time.time() - hours_ago * 3600)
    return path


def prepare(tmp_path: Path, cache: Path, **settings: Any) -> None:
    """A real ``prepare`` (artifact mode) on the host side, with ``settings`` in its header."""
    manifest, chunks = archive(tmp_path)
    line = json.loads(header(cache, manifest, chunks))
    line.update(settings)
    assert main.serve(io.BytesIO(json.dumps(line).encode() + b"\n" + b"".join(chunks))) == 0


def test_the_clients_expiry_is_used_on_the_host(tmp_path: Path, capsys: Any,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(lifecycle.EXPIRY_VARIABLE, "7d")  # the client's setting wins
    cache = tmp_path / "host-cache"
    old = planted(cache, "old", hours_ago=2)
    prepare(tmp_path, cache, cache_expiry=3600.0, cache_max_size=None)
    assert events(capsys.readouterr().out)[-1]["event"] == "done"
    assert not old.exists()


def test_without_the_clients_settings_the_host_keeps_its_own(tmp_path: Path,
                                                               capsys: Any) -> None:
    cache = tmp_path / "host-cache"
    old = planted(cache, "old", hours_ago=2)  # within the default 24 h
    prepare(tmp_path, cache)
    assert events(capsys.readouterr().out)[-1]["event"] == "done"
    assert old.exists()


def test_the_clients_size_cap_evicts_on_the_host(tmp_path: Path, capsys: Any) -> None:
    cache = tmp_path / "host-cache"
    older = planted(cache, "older", hours_ago=3)
    newer = planted(cache, "newer", hours_ago=2)
    prepare(tmp_path, cache, cache_expiry=24 * 3600.0, cache_max_size=1)
    assert events(capsys.readouterr().out)[-1]["event"] == "done"
    assert not older.exists() and not newer.exists()
    assert (cache / "envs" / ("e" * 32)).is_dir()  # the one just prepared is leased: it stays


def test_sent_settings_fall_back_to_the_hosts_for_what_is_missing_or_odd() -> None:
    own = (86400.0, 5000)
    assert lifecycle.sent_settings({}, own) == own
    assert lifecycle.sent_settings({"cache_expiry": 60, "cache_max_size": None}, own) == (
        60.0, None)
    assert lifecycle.sent_settings({"cache_expiry": "1h", "cache_max_size": True}, own) == own
    assert lifecycle.sent_settings({"cache_expiry": -1, "cache_max_size": 10}, own) == (
        86400.0, 10)
