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
    options = plan_options(accelerator="cu124")
    assert options.accelerator_index == "https://download.pytorch.org/whl/cu124"
    with dask.config.set({"packsync.accelerator": "rocm6.2",
                          "packsync.accelerator-index": "https://mirror/{accelerator}/"}):
        configured = plan_options()
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
    as_here = plan(client)
    assert decision(as_here, "torch").specifier == "==2.5.1+cpu" and as_here.accelerator == ""
