"""Fixtures of the integration tests; the helpers behind them are in ``tests/support``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.venvs import ClientEnv, make_client


@pytest.fixture
def client_env(tmp_path: Path) -> ClientEnv:
    """A fresh venv holding packsync (from this checkout) and httpx."""
    return make_client(tmp_path, "httpx")
