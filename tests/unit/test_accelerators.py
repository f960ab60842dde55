"""Accelerator variants in the plan: the option, and which packages switch."""

from __future__ import annotations

import dask
import pytest

from packsync.errors import PlanError
from packsync.model import InstalledDist
from packsync.plan.options import plan_options
from packsync.plan.rules import plan
from packsync.sources import EditableSource
from tests.unit.test_plan import decision, snapshot


def test_the_accelerator_option_names_its_index_and_refuses_unknown_labels():
    client = snapshot(InstalledDist(name="torch", version="2.5.1"))
    decided = plan(client, options=plan_options(accelerator="cu124"))
    assert decided.accelerator_index == "https://download.pytorch.org/whl/cu124"
    with dask.config.set({"packsync.accelerator": "rocm6.2",
                          "packsync.accelerator-index": "https://mirror/{accelerator}/"}):
        configured = plan(client, options=plan_options())
    assert (configured.accelerator, configured.accelerator_index) == ("rocm6.2",
                                                                     "https://mirror/rocm6.2/")
    assert plan_options().accelerator == ""
    with pytest.raises(PlanError, match="'gpu' is not an accelerator"):
        plan_options(accelerator="gpu")


def test_only_index_pins_of_the_torch_family_switch():
    client = snapshot(InstalledDist(name="torch", version="2.5.1+cpu"),
                      InstalledDist(name="torchvision", version="0.20.1+cu124"),
                      InstalledDist(name="numpy", version="2.1.3"),
                      InstalledDist(name="torchaudio", version="2.5.1",
                                    source=EditableSource(path="/src/audio")))
    switched = plan(client, options=plan_options(accelerator="cu124"))
    assert decision(switched, "torch").specifier == "==2.5.1+cu124"
    assert decision(switched, "torch").fallbacks == ()
    assert decision(switched, "torchvision").specifier == "==0.20.1+cu124"  # already
    assert "→" not in decision(switched, "torchvision").reason
    assert decision(switched, "numpy").specifier == "==2.1.3"
    assert decision(switched, "torchaudio").action == "build"  # local code stays itself
    [notice] = [p for p in switched.problems if "accelerator" in p.message]
    assert notice.severity == "notice" and notice.packages == ("torch",)
    # as here: torch and torchvision disagree on their variant, so no index is added
    as_here = plan(client, options=plan_options())
    assert decision(as_here, "torch").specifier == "==2.5.1+cpu" and as_here.accelerator == ""


def test_the_installed_variant_keeps_its_index():
    kept = plan(snapshot(InstalledDist(name="torch", version="2.5.1+cu124")),
                options=plan_options())
    assert decision(kept, "torch").specifier == "==2.5.1+cu124"
    assert (kept.accelerator, kept.accelerator_index) == (
        "cu124", "https://download.pytorch.org/whl/cu124")
    assert any("cu124 variants installed here are kept" in p.message for p in kept.problems)
    local_build = plan(snapshot(InstalledDist(name="torch", version="2.5.1+git1234")),
                       options=plan_options())
    assert local_build.accelerator_index == ""
