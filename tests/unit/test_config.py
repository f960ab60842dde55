"""The cache root comes from the argument, then PACKSYNC_CACHE_DIR, then dask config."""

from __future__ import annotations

import dask.config

from packsync.config import cache_dir, store_url


def test_cache_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv("PACKSYNC_CACHE_DIR", raising=False)
    with dask.config.set({"packsync.cache-dir": str(tmp_path / "from-config")}):
        assert cache_dir() == tmp_path / "from-config"
        monkeypatch.setenv("PACKSYNC_CACHE_DIR", str(tmp_path / "from-env"))
        assert cache_dir() == tmp_path / "from-env"
        assert cache_dir(tmp_path / "explicit") == tmp_path / "explicit"


def test_store_defaults_to_the_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("PACKSYNC_STORE", raising=False)
    assert store_url(None, tmp_path) == str(tmp_path / "store")
    assert store_url("s3://bucket/x", tmp_path) == "s3://bucket/x"
