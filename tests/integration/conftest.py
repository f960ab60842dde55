"""Fixtures of the integration tests; the helpers behind them are in ``tests/support``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import moto_s3
from tests.support.venvs import ClientEnv, make_client


@pytest.fixture
def client_env(tmp_path: Path) -> ClientEnv:
    """A fresh venv holding packsync (from this checkout) and httpx."""
    return make_client(tmp_path, "httpx")


@pytest.fixture
def s3_endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 with a bucket ``packsync``; stopped by PID."""
    with moto_s3(tmp_path / "moto.log") as url:
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                            "AWS_DEFAULT_REGION": "us-east-1"}.items():
            monkeypatch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            monkeypatch.delenv(name, raising=False)
        import s3fs

        s3fs.S3FileSystem(endpoint_url=url, skip_instance_cache=True).mkdir("packsync")
        yield url
