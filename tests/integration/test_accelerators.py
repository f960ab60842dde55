"""Accelerator variants against a local index laid out like PyTorch's (``/whl/cpu``,
``/whl/cu124``), holding tiny ``torch`` wheels made by the test: a ``+cpu`` label and its
index are carried as such, and GPU workers get the ``+cu124`` variant, shown in the plan."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from packsync.lock.resolve import lock
from packsync.model import PlanOptions
from packsync.plan.rules import plan
from packsync.scan.indexes import discover
from packsync.store import open_store
from tests.integration.test_resolution import MAC, linux_snapshot
from tests.support.projects import make_wheel
from tests.support.simple_index import serve_indexes
from tests.support.venvs import hermetic_env

pytestmark = pytest.mark.integration

VERSION = "2.5.1"


@pytest.fixture(scope="module")
def pytorch(tmp_path_factory):
    """``URL/whl/cpu`` and ``URL/whl/cu124``, each with its variant of torch 2.5.1."""
    root = tmp_path_factory.mktemp("pytorch")
    variants = {f"whl/{label}": [make_wheel(root / label, "torch", f"{VERSION}+{label}")]
                for label in ("cpu", "cu124")}
    with serve_indexes(root / "served", variants) as url:
        yield url


def resolve(snapshot, options: PlanOptions, cpu_index: str, tmp_path: Path):
    env = {"HOME": str(tmp_path), "PIP_CONFIG_FILE": os.devnull}
    if cpu_index:
        env["UV_INDEX"] = cpu_index
    decided = plan(snapshot, None, options)
    result = lock(decided, {}, store=open_store(str(tmp_path / "store")),
                  settings=discover(env, prefix=str(tmp_path)), cache=tmp_path / "cache")
    return decided, result


def torch_url(lock_text: str) -> str:
    lines = lock_text.splitlines()
    start = lines.index('name = "torch"')
    return next(line for line in lines[start:] if line.startswith("url = "))


def test_a_local_label_and_its_index_are_carried(pytorch, tmp_path):
    cpu = f"{pytorch}/whl/cpu"
    snapshot = linux_snapshot(f"{VERSION}+cpu", probe="torch")
    decided, result = resolve(snapshot, PlanOptions(), cpu, tmp_path)
    assert result.versions["torch"] == f"{VERSION}+cpu" and result.relaxed == ()
    assert f"{pytorch}/files/whl/cpu/torch-{VERSION}+cpu" in torch_url(result.text)
    assert decided.accelerator == ""
    # installed with a one-off --index-url: the index of its variant is searched for it
    pytorch_like = PlanOptions.create(accelerator_index=f"{pytorch}/whl/{{accelerator}}")
    decided, result = resolve(snapshot, pytorch_like, "", tmp_path)
    assert (decided.accelerator, decided.accelerator_index) == ("cpu", cpu)
    assert f"{pytorch}/files/whl/cpu/torch-{VERSION}+cpu" in torch_url(result.text)
    assert result.relaxed == ()


def test_gpu_workers_get_the_cuda_variant_and_the_plan_shows_it(pytorch, tmp_path):
    cpu = f"{pytorch}/whl/cpu"
    gpu = PlanOptions.create(accelerator="cu124",
                             accelerator_index=f"{pytorch}/whl/{{accelerator}}")
    decided, result = resolve(linux_snapshot(f"{VERSION}+cpu", probe="torch"), gpu, cpu,
                              tmp_path)
    torch = next(d for d in decided.decisions if d.key == "torch")
    assert torch.specifier == f"=={VERSION}+cu124"
    assert f"torch {VERSION}+cpu → {VERSION}+cu124 for cu124 workers" in torch.reason
    assert (decided.accelerator, decided.accelerator_index) == ("cu124", f"{pytorch}/whl/cu124")
    assert any("accelerator cu124" in p.message for p in decided.problems)
    assert result.versions["torch"] == f"{VERSION}+cu124"
    assert f"{pytorch}/files/whl/cu124/torch-{VERSION}+cu124" in torch_url(result.text)

    # from a Mac, whose torch has no label, CPU workers get the +cpu variant
    cpu_workers = PlanOptions.create(accelerator="cpu",
                                     accelerator_index=f"{pytorch}/whl/{{accelerator}}")
    _, from_mac = resolve(linux_snapshot(VERSION, MAC, probe="torch"), cpu_workers, cpu,
                          tmp_path)
    assert from_mac.versions["torch"] == f"{VERSION}+cpu"


def test_packsync_plan_accelerator_option(pytorch, tmp_path):
    snapshot = tmp_path / "linux.json"
    snapshot.write_text(json.dumps(linux_snapshot(f"{VERSION}+cpu", probe="torch").to_dict()))
    result = subprocess.run(
        [sys.executable, "-m", "packsync.cli", "plan", "--snapshot", str(snapshot),
         "--accelerator", "cu124", "--cache-dir", str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=300,
        env=hermetic_env(COLUMNS="300", UV_INDEX=f"{pytorch}/whl/cpu",
                         DASK_PACKSYNC__ACCELERATOR_INDEX=f"{pytorch}/whl/{{accelerator}}"))
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert f"torch {VERSION}+cpu → {VERSION}+cu124" in text
    assert f"accelerator: cu124, variants from {pytorch}/whl/cu124" in text
    bad = subprocess.run([sys.executable, "-m", "packsync.cli", "plan", "--snapshot",
                          str(snapshot), "--no-resolve", "--accelerator", "gpu"],
                         capture_output=True, text=True, env=hermetic_env(), timeout=300)
    assert bad.returncode == 2 and "cu124" in bad.stderr
