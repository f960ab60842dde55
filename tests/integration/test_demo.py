"""The demo of the README (``make demo``) runs and proves its workers match the client."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.support.venvs import REPO, ClientEnv

pytestmark = pytest.mark.integration


def test_the_seed_demo_passes_its_own_proof(client_env: ClientEnv, tmp_path):
    demo = tmp_path / "seed_demo"
    shutil.copytree(REPO / "examples" / "seed_demo", demo,
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    client_env.install("-e", str(demo / "my_local_package"))
    result = subprocess.run([str(client_env.python), "run_demo.py"], cwd=demo,
                            env=client_env.env(COLUMNS="200"), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "all proof checks passed" in result.stdout
