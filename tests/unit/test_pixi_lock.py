"""A pixi.lock of several environments: the one this Python runs in is read, checked build
by build, and gives the workers' conda packages the very file it locks for their platform."""

from __future__ import annotations

import hashlib
import json
import textwrap
from dataclasses import replace
from pathlib import Path

import dask
import pytest

from packsync.cli import main
from packsync.conda.model import CondaEnvironment, CondaPackage
from packsync.errors import PlanError
from packsync.model import InstalledDist, Interpreter, PlanOptions, Snapshot
from packsync.plan.options import plan_options
from packsync.plan.rules import MANDATORY, enforce, plan
from packsync.scan.project_locks import pixi_environment, project_locks
from packsync.sources import CondaSource
from tests.unit.test_project_locks import MAC_ENV

CF = "https://conda.anaconda.org/conda-forge"
SHA = {name: hashlib.sha256(name.encode()).hexdigest() for name in (
    "numpy-linux-cpu", "numpy-linux-cuda", "python-linux", "numpy-mac", "python-mac", "tzdata",
    "six", "app", "libgcc")}

# as pixi 0.40+ writes it: environments list each platform's packages by URL; the
# packages after them carry what the URL does not say (hashes, dependencies)
PIXI_V6 = f"""\
version: 6
environments:
  cuda:
    channels:
    - url: {CF}/
    packages:
      linux-64:
      - conda: {CF}/linux-64/libgcc-14.2.0-h77fa898_1.conda
      - conda: {CF}/linux-64/numpy-2.1.2-py311cuda_1.conda
      - conda: {CF}/linux-64/python-3.11.7-hab00c5b_1_cpython.conda
      - conda: {CF}/noarch/tzdata-2024b-hc8b5060_0.conda
      osx-arm64:
      - conda: {CF}/osx-arm64/numpy-2.1.3-py311h_0.conda
      - conda: {CF}/osx-arm64/python-3.11.7-hdf0ec26_1_cpython.conda
      - conda: {CF}/noarch/tzdata-2024b-hc8b5060_0.conda
  default:
    channels:
    - url: {CF}/
    indexes:
    - https://pypi.org/simple
    packages:
      linux-64:
      - conda: {CF}/linux-64/numpy-2.1.2-py311h_0.conda
      - conda: {CF}/linux-64/python-3.11.7-hab00c5b_1_cpython.conda
      - conda: {CF}/noarch/tzdata-2024b-hc8b5060_0.conda
      - pypi: https://files.pythonhosted.org/packages/six-1.16.0-py2.py3-none-any.whl
      - pypi: .
      osx-arm64:
      - conda: {CF}/osx-arm64/numpy-2.1.3-py311h_0.conda
      - conda: {CF}/osx-arm64/python-3.11.7-hdf0ec26_1_cpython.conda
      - conda: {CF}/noarch/tzdata-2024b-hc8b5060_0.conda
      - pypi: https://files.pythonhosted.org/packages/six-1.16.0-py2.py3-none-any.whl
      - pypi: .
packages:
- conda: {CF}/linux-64/libgcc-14.2.0-h77fa898_1.conda
  build_number: 1
  sha256: {SHA["libgcc"]}
- conda: {CF}/linux-64/numpy-2.1.2-py311cuda_1.conda
  sha256: {SHA["numpy-linux-cuda"]}
  md5: 0123456789abcdef0123456789abcdef
  depends:
  - python >=3.11,<3.12.0a0
  size: 8012345
- conda: {CF}/linux-64/numpy-2.1.2-py311h_0.conda
  sha256: {SHA["numpy-linux-cpu"]}
  depends:
  - python >=3.11,<3.12.0a0
- conda: {CF}/linux-64/python-3.11.7-hab00c5b_1_cpython.conda
  build_number: 1
  sha256: {SHA["python-linux"]}
- conda: {CF}/noarch/tzdata-2024b-hc8b5060_0.conda
  sha256: {SHA["tzdata"]}
- conda: {CF}/osx-arm64/numpy-2.1.3-py311h_0.conda
  sha256: {SHA["numpy-mac"]}
- conda: {CF}/osx-arm64/python-3.11.7-hdf0ec26_1_cpython.conda
  build_number: 1
  sha256: {SHA["python-mac"]}
- pypi: https://files.pythonhosted.org/packages/six-1.16.0-py2.py3-none-any.whl
  name: six
  version: 1.16.0
  sha256: {SHA["six"]}
- pypi: .
  name: app
  version: 0.1.0
  sha256: {SHA["app"]}
  editable: true
"""

MAC_PACKAGES = (
    CondaPackage(name="numpy", version="2.1.3", build="py311h_0", subdir="osx-arm64",
                 python_dists=("numpy",)),
    CondaPackage(name="python", version="3.11.7", build="hdf0ec26_1_cpython",
                 subdir="osx-arm64"),
    CondaPackage(name="tzdata", version="2024b", build="hc8b5060_0", subdir="noarch",
                 noarch="generic"),
)


def mac(project: Path, prefix: str, packages: tuple[CondaPackage, ...] = MAC_PACKAGES,
        environ: dict[str, str] | None = None) -> Snapshot:
    """A Mac whose conda prefix is ``prefix``, in ``project``."""
    locks, notes = project_locks(project, prefix=prefix, environ=environ or {})
    assert notes == ()
    return Snapshot(
        interpreter=Interpreter(implementation="cpython", version="3.11.7",
                                platform="macosx-14.0-arm64"),
        environment=MAC_ENV, prefix=prefix,
        dists=tuple(InstalledDist(name=n, version="1.0") for n in MANDATORY) + (
            InstalledDist(name="numpy", version="2.1.3", source=CondaSource(package="numpy")),
            InstalledDist(name="six", version="1.16.0")),
        conda=CondaEnvironment(prefix=prefix, subdir="osx-arm64", channels=(CF,),
                               packages=packages),
        project_locks=locks,
    )


def conda_specs(decided) -> dict[str, tuple[str, str]]:  # type: ignore[no-untyped-def]
    assert decided.conda is not None
    return {d.name: (d.spec, d.reason) for d in decided.conda.decisions}


def test_the_environment_is_the_one_this_python_runs_in():
    assert pixi_environment("/p/.pixi/envs/cuda", {"PIXI_ENVIRONMENT_NAME": "other"}) == "cuda"
    assert pixi_environment("/opt/env", {"PIXI_ENVIRONMENT_NAME": "cuda"}) == "cuda"
    assert pixi_environment("/opt/env", {}) == "default"
    assert pixi_environment("/p/.venv", {}) == "default"


def test_only_the_running_environment_is_read_with_its_builds_and_files(tmp_path: Path):
    (tmp_path / "pixi.lock").write_text(PIXI_V6)
    [cuda], notes = project_locks(tmp_path, prefix=str(tmp_path / ".pixi/envs/cuda"))
    assert notes == () and cuda.environment == "cuda" and cuda.kind == "pixi.lock"
    assert cuda.label == f"{tmp_path / 'pixi.lock'} (environment cuda)"
    linux = {p.name: p for p in cuda.packages if "linux" in p.marker}
    assert (linux["numpy"].version, linux["numpy"].build, linux["numpy"].file,
            linux["numpy"].sha256) == ("2.1.2", "py311cuda_1", "numpy-2.1.2-py311cuda_1.conda",
                                       SHA["numpy-linux-cuda"])
    assert "six" not in linux  # the cuda environment has no PyPI packages
    assert len(cuda.environments) == 2

    [default], _ = project_locks(tmp_path, prefix="/somewhere/else")
    linux = {p.name: p for p in default.packages if "linux" in p.marker}
    assert default.environment == "default" and linux["numpy"].build == "py311h_0"
    assert (linux["six"].version, linux["six"].build) == ("1.16.0", "")
    assert "app" not in linux  # the project itself is built, never pinned

    locks, notes = project_locks(tmp_path, prefix=str(tmp_path / ".pixi/envs/gpu"))
    assert locks == ()
    assert notes == (f"the project lock {tmp_path / 'pixi.lock'} has no environment 'gpu', "
                     "the one this Python runs in (it has: cuda, default): not used",)


def test_linux_workers_get_the_file_the_running_environment_locks(tmp_path: Path):
    (tmp_path / "pixi.lock").write_text(PIXI_V6)
    decided = plan(mac(tmp_path, str(tmp_path / ".pixi/envs/cuda")))
    assert decided.project_lock == str(tmp_path / "pixi.lock")
    assert decided.project_lock_environment == "cuda"
    assert any(f"from the project lock {tmp_path / 'pixi.lock'} (environment cuda)" in p.message
               for p in decided.problems)
    specs = conda_specs(decided)
    assert specs["numpy"] == (
        f"numpy ==2.1.2 py311cuda_1[sha256={SHA['numpy-linux-cuda']}]",
        "pixi.lock (environment cuda) locks numpy-2.1.2-py311cuda_1.conda for linux-64 "
        "(linux-x86_64)")
    # Python keeps the client's version: the lock's file has it, so the file is taken
    assert specs["python"][0] == (
        f"python ==3.11.7 hab00c5b_1_cpython[sha256={SHA['python-linux']}]")
    assert specs["tzdata"][0] == f"tzdata ==2024b hc8b5060_0[sha256={SHA['tzdata']}]"
    # what only Linux has in the lock is held to its file, should the solver need it
    assert decided.conda is not None and decided.conda.constraints == (
        f"libgcc ==14.2.0 h77fa898_1[sha256={SHA['libgcc']}]",)

    default = plan(mac(tmp_path, "/opt/env"))
    assert conda_specs(default)["numpy"][0] == (
        f"numpy ==2.1.2 py311h_0[sha256={SHA['numpy-linux-cpu']}]")
    assert default.conda is not None and default.conda.constraints == ()


def test_python_keeps_the_clients_version_when_the_lock_has_another(tmp_path: Path):
    (tmp_path / "pixi.lock").write_text(
        PIXI_V6.replace("linux-64/python-3.11.7-", "linux-64/python-3.11.8-"))
    specs = conda_specs(plan(mac(tmp_path, "/opt/env")))
    assert specs["python"][0] == "python ==3.11.7"
    assert specs["numpy"][0].startswith("numpy ==2.1.2 py311h_0[")


def test_an_environment_with_another_build_is_reported_and_not_used(tmp_path: Path):
    (tmp_path / "pixi.lock").write_text(PIXI_V6)
    rebuilt = (replace(MAC_PACKAGES[0], build="py311h_1"), *MAC_PACKAGES[1:])
    decided = plan(mac(tmp_path, str(tmp_path / ".pixi/envs/cuda"), rebuilt))
    assert decided.project_lock == "" and decided.project_lock_environment == ""
    [report] = [p for p in decided.problems if "does not match" in p.message]
    assert report.severity == "warning"
    assert f"{tmp_path / 'pixi.lock'} (environment cuda)" in report.message
    assert "numpy 2.1.3 py311h_1 here, 2.1.3 py311h_0 in the lock" in report.message
    assert "pixi install" in report.hint
    assert conda_specs(decided)["numpy"][0] == "numpy 2.1.*,<=2.1.3"  # the usual rule


def test_an_environment_not_locked_for_the_workers_is_not_used(tmp_path: Path):
    mac_only = f"""\
version: 6
environments:
  default:
    channels:
    - url: {CF}/
    packages:
      osx-arm64:
      - conda: {CF}/osx-arm64/numpy-2.1.3-py311h_0.conda
packages:
- conda: {CF}/osx-arm64/numpy-2.1.3-py311h_0.conda
  sha256: {SHA["numpy-mac"]}
"""
    (tmp_path / "pixi.lock").write_text(mac_only)
    decided = plan(mac(tmp_path, "/opt/env"))
    assert decided.project_lock == ""
    assert any("(environment default) is not resolved for linux-x86_64" in p.message
               for p in decided.problems)


PIXI_V5 = f"""\
version: 5
environments:
  default:
    channels:
    - url: {CF}/
    packages:
      linux-64:
      - conda: {CF}/linux-64/numpy-2.1.2-py311h_0.conda
      osx-arm64:
      - conda: {CF}/osx-arm64/numpy-2.1.3-py311h_0.conda
packages:
- kind: conda
  name: numpy
  version: 2.1.2
  build: py311h_0
  subdir: linux-64
  url: {CF}/linux-64/numpy-2.1.2-py311h_0.conda
  sha256: {SHA["numpy-linux-cpu"]}
  md5: 0123456789abcdef0123456789abcdef
- kind: conda
  name: numpy
  version: 2.1.3
  build: py311h_0
  subdir: osx-arm64
  url: {CF}/osx-arm64/numpy-2.1.3-py311h_0.conda
  sha256: {SHA["numpy-mac"]}
"""


def test_a_version_5_lock_is_read_too(tmp_path: Path):
    (tmp_path / "pixi.lock").write_text(textwrap.dedent(PIXI_V5))
    specs = conda_specs(plan(mac(tmp_path, "/opt/env", MAC_PACKAGES[:1])))
    assert specs["numpy"][0] == f"numpy ==2.1.2 py311h_0[sha256={SHA['numpy-linux-cpu']}]"


def test_a_lock_that_cannot_be_read_is_named_without_its_credentials(tmp_path: Path):
    private = "https://ci:SECRETPW@conda.example.com/t/tk-abcdef1234567890/private"
    (tmp_path / "pixi.lock").write_text(PIXI_V6.replace(
        f"      - conda: {CF}/noarch/tzdata-2024b-hc8b5060_0.conda\n  default:",
        f"      - conda: {private}/noarch/lost-1.0-0.conda\n  default:", 1))
    locks, [note] = project_locks(tmp_path, prefix="/opt/env")
    assert locks == () and "cannot be read" in note
    assert "SECRETPW" not in note and "tk-abcdef1234567890" not in note


def test_conda_versions_of_the_lock_never_reach_uv_as_constraints(tmp_path: Path):
    (tmp_path / "pixi.lock").write_text(PIXI_V6)
    decided = plan(mac(tmp_path, str(tmp_path / ".pixi/envs/cuda")))
    assert not any(c.split("==")[0] in ("libgcc", "python", "tzdata", "numpy")
                   for c in decided.lock_constraints), decided.lock_constraints


def test_workers_get_the_environment_asked_for_from_a_mac_running_default(tmp_path: Path):
    (tmp_path / "pixi.lock").write_text(PIXI_V6)
    lock = tmp_path / "pixi.lock"
    decided = plan(mac(tmp_path, "/opt/env"), options=PlanOptions(lock_environment="cuda"))
    assert decided.project_lock == str(lock) and decided.project_lock_environment == "cuda"
    assert not [p for p in decided.problems if p.severity == "critical"], decided.problems
    assert any(p.message.startswith(
        f"versions for linux-x86_64 come from the project lock {lock} (environment cuda), "
        "asked for the workers; this machine runs default") for p in decided.problems)
    specs = conda_specs(decided)
    assert specs["numpy"] == (
        f"numpy ==2.1.2 py311cuda_1[sha256={SHA['numpy-linux-cuda']}]",
        "pixi.lock (environment cuda) locks numpy-2.1.2-py311cuda_1.conda for linux-64 "
        "(linux-x86_64)")
    assert decided.conda is not None and decided.conda.constraints == (
        f"libgcc ==14.2.0 h77fa898_1[sha256={SHA['libgcc']}]",)  # only cuda has it
    # six is installed here but not in cuda: the code run here needs it, the usual rule
    [six] = [d for d in decided.decisions if d.name == "six"]
    assert six.specifier == "==1.16.0" and "lock" not in six.reason


def test_an_environment_the_lock_lacks_is_critical_and_names_those_it_has(tmp_path: Path):
    (tmp_path / "pixi.lock").write_text(PIXI_V6)
    decided = plan(mac(tmp_path, "/opt/env"), options=PlanOptions(lock_environment="gpu"))
    assert decided.project_lock == ""
    [critical] = [p for p in decided.problems if p.severity == "critical"]
    assert critical.message == (f"the project lock {tmp_path / 'pixi.lock'} has no environment "
                                "'gpu', asked for the workers (it has: cuda, default)")
    assert conda_specs(decided)["numpy"][0] == "numpy 2.1.*,<=2.1.3"  # the usual rule
    with pytest.raises(PlanError, match="no environment 'gpu'"):
        enforce(decided.problems, "critical")


def test_an_environment_with_nothing_for_the_workers_platform_is_critical(tmp_path: Path):
    mac_only_cuda = PIXI_V6.replace(
        PIXI_V6[PIXI_V6.index("    packages:\n      linux-64:"):PIXI_V6.index("      osx-arm64:")],
        "    packages:\n", 1)
    (tmp_path / "pixi.lock").write_text(mac_only_cuda)
    decided = plan(mac(tmp_path, "/opt/env"), options=PlanOptions(lock_environment="cuda"))
    assert decided.project_lock == ""
    [critical] = [p for p in decided.problems if p.severity == "critical"]
    assert critical.message == (
        f"the project lock {tmp_path / 'pixi.lock'} (environment cuda), asked for the "
        "workers, has no packages for linux-x86_64 (it has: cuda, default; the ones for "
        "linux-x86_64: default)")


def test_a_running_environment_unlike_its_lock_still_refuses_the_one_asked_for(
        tmp_path: Path):
    (tmp_path / "pixi.lock").write_text(PIXI_V6)
    rebuilt = (replace(MAC_PACKAGES[0], build="py311h_1"), *MAC_PACKAGES[1:])
    decided = plan(mac(tmp_path, "/opt/env", rebuilt), options=PlanOptions(lock_environment="cuda"))
    assert decided.project_lock == ""
    [mismatch] = [p for p in decided.problems if "does not match" in p.message]
    assert mismatch.severity == "warning" and "(environment default)" in mismatch.message
    [critical] = [p for p in decided.problems if p.severity == "critical"]
    assert "asked for the environment 'cuda'" in critical.message
    assert conda_specs(decided)["numpy"][0] == "numpy 2.1.*,<=2.1.3"


LINUX_ENV = {**MAC_ENV, "sys_platform": "linux", "platform_machine": "x86_64",
             "platform_system": "Linux"}


def test_a_linux_machine_running_default_gives_same_platform_workers_cuda(tmp_path: Path):
    (tmp_path / "pixi.lock").write_text(PIXI_V6)
    locks, _ = project_locks(tmp_path, prefix="/opt/env")
    packages = (
        CondaPackage(name="numpy", version="2.1.2", build="py311h_0", subdir="linux-64",
                     python_dists=("numpy",)),
        CondaPackage(name="python", version="3.11.7", build="hab00c5b_1_cpython",
                     subdir="linux-64"),
    )
    linux = Snapshot(
        interpreter=Interpreter(implementation="cpython", version="3.11.7",
                                platform="linux-x86_64"),
        environment=LINUX_ENV, prefix="/opt/env",
        dists=tuple(InstalledDist(name=n, version="1.0") for n in MANDATORY) + (
            InstalledDist(name="numpy", version="2.1.2", source=CondaSource(package="numpy")),
            InstalledDist(name="six", version="1.16.0")),
        conda=CondaEnvironment(prefix="/opt/env", subdir="linux-64", channels=(CF,),
                               packages=packages),
        project_locks=locks,
    )
    same = plan(linux)
    assert same.project_lock == "" and conda_specs(same)["numpy"][0] == "numpy ==2.1.2 py311h_0"
    decided = plan(linux, options=PlanOptions(lock_environment="cuda"))
    assert decided.project_lock_environment == "cuda"
    assert conda_specs(decided)["numpy"][0] == (
        f"numpy ==2.1.2 py311cuda_1[sha256={SHA['numpy-linux-cuda']}]")
    assert not [p for p in decided.problems if p.severity == "critical"], decided.problems


def test_the_command_line_asks_for_a_lock_environment(tmp_path: Path, capsys):  # type: ignore[no-untyped-def]
    (tmp_path / "pixi.lock").write_text(PIXI_V6)
    saved = tmp_path / "snapshot.json"
    saved.write_text(json.dumps(mac(tmp_path, "/opt/env").to_dict()))
    argv = ["plan", "--snapshot", str(saved), "--target", "linux-x86_64", "--no-resolve",
            "--cache-dir", str(tmp_path / "cache")]
    assert main([*argv, "--lock-environment", "gpu"]) == 2
    assert "no environment 'gpu'" in capsys.readouterr().err.replace("\n", "")
    assert main([*argv, "--lock-environment", "cuda"]) == 0
    assert "py311cuda_1" in capsys.readouterr().out


def test_the_lock_environment_is_a_dask_setting_an_argument_overrides():
    with dask.config.set({"packsync.lock-environment": "cuda"}):
        assert plan_options().lock_environment == "cuda"
        assert plan_options(lock_environment="").lock_environment == ""
    assert plan_options().lock_environment == ""
