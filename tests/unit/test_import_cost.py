"""``import packsync`` stays cheap: each public name loads its modules on first use.

Every check runs in a fresh interpreter, since this process has imported much already.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

import packsync

# What `import packsync` may load of packsync itself: the errors, and the light
# subpackages whose names are also the stage functions.
LIGHT = {"packsync", "packsync.errors", "packsync.materialize", "packsync.plan", "packsync.scan"}

# Modules only some launches need: the SSH client, object stores, the CLI's console,
# conda solving, and what only a new build or a new resolve uses.
NOT_FOR_A_LOCAL_CLUSTER = (
    "asyncssh",
    "fsspec",
    "rich",
    "rattler",
    "filelock",
    "tomli_w",
    "packsync.cli",
    "packsync.conda.install",
)


def loaded_by(code: str) -> list[str]:
    """The modules ``code`` adds to ``sys.modules`` in a fresh interpreter."""
    probe = textwrap.dedent("""
        import json, sys
        before = set(sys.modules)
        exec(compile(sys.argv[1], "<probe>", "exec"))
        print(json.dumps(sorted(set(sys.modules) - before)))
    """)
    result = subprocess.run(
        [sys.executable, "-c", probe, textwrap.dedent(code)],
        capture_output=True, text=True, timeout=120, check=True,
    )
    loaded: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


def test_import_packsync_loads_only_the_standard_library_and_its_light_modules() -> None:
    loaded = loaded_by("import packsync")
    ours = {m for m in loaded if m.split(".")[0] == "packsync"}
    foreign = {m for m in loaded if m.split(".")[0] not in sys.stdlib_module_names}
    assert ours == LIGHT
    assert foreign - ours == set()


def test_a_local_cluster_does_not_import_what_only_other_launches_need() -> None:
    loaded = set(loaded_by("import packsync; packsync.Cluster"))
    assert "distributed" in loaded  # the probe does import the launch code
    assert loaded.isdisjoint(NOT_FOR_A_LOCAL_CLUSTER), loaded & set(NOT_FOR_A_LOCAL_CLUSTER)


def test_every_public_name_resolves_in_a_fresh_interpreter() -> None:
    names = ", ".join(packsync.__all__)
    kinds = json.loads(subprocess.run(
        [sys.executable, "-c",
         f"import json, packsync; from packsync import {names}\n"
         "print(json.dumps({n: type(getattr(packsync, n)).__name__ for n in packsync.__all__}))"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout)
    assert set(kinds) == set(packsync.__all__)
    assert "module" not in kinds.values()
    assert "Cluster" in dir(packsync)


def test_stage_functions_are_not_replaced_by_their_subpackages() -> None:
    # importing a module of packsync.scan/.plan/.materialize, before or after the
    # function is first used, must leave packsync.scan etc. the functions
    code = """
        import packsync.scan.workdir, packsync.plan.rules
        import packsync
        first = [packsync.scan, packsync.plan]
        import packsync.materialize.environments, packsync.launch.cluster
        names = ("scan", "plan", "materialize")
        assert first == [packsync.scan, packsync.plan]
        assert all(callable(getattr(packsync, n)) for n in names), [getattr(packsync, n) for n in names]
        assert packsync.materialize.__module__ == "packsync.materialize.environments"
    """
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        packsync.no_such_name  # noqa: B018
