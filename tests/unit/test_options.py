"""Planning options come from arguments first, then ``packsync.*`` Dask configuration."""

from __future__ import annotations

import dask.config
import pytest

from packsync.errors import PlanError
from packsync.plan.options import plan_options


def test_defaults():
    options = plan_options()
    assert (options.ignore, options.only, options.strict, options.fail_on) == (
        frozenset(), None, False, "critical")


def test_dask_config_supplies_what_arguments_do_not():
    with dask.config.set({"packsync.strict": True, "packsync.only": "Pandas, numpy",
                          "packsync.ignore": ["Some_Pkg"], "packsync.fail-on": "warning"}):
        options = plan_options()
        assert options.strict and options.fail_on == "warning"
        assert options.only == frozenset({"pandas", "numpy"})
        assert options.ignore == frozenset({"some-pkg"})
        overridden = plan_options(strict=False, only=["x"], ignore=[], fail_on="any")
        assert not overridden.strict and overridden.fail_on == "any"
        assert overridden.only == frozenset({"x"}) and overridden.ignore == frozenset()


def test_an_unknown_fail_on_level_names_the_choices():
    with pytest.raises(PlanError) as caught:
        plan_options(fail_on="sometimes")
    assert "sometimes" in str(caught.value) and "warning" in caught.value.hint
