"""Plan options given to ``Cluster`` are checked before anything starts."""

from __future__ import annotations

import pytest

import packsync
from packsync.errors import PlanError


@pytest.mark.parametrize(("option", "named"), [
    ({"accelerator": "gpu-please"}, "accelerator='gpu-please'"),
    ({"fail_on": "sometimes"}, "fail_on='sometimes'"),
])
def test_an_unknown_plan_option_is_refused_naming_it(option, named):
    with pytest.raises(PlanError) as refused:
        packsync.Cluster(n_workers=1, **option)
    assert named in refused.value.message and refused.value.hint
