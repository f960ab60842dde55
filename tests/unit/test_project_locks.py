"""The working project's locks as read (pylock.toml, pixi.lock) and as the plan uses them."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from pathlib import Path

from packsync.model import InstalledDist, Interpreter, Snapshot
from packsync.plan.rules import MANDATORY, plan
from packsync.scan.project_locks import project_locks
from packsync.sources import EditableSource

MAC_ENV = {"sys_platform": "darwin", "platform_machine": "arm64", "python_version": "3.11",
           "python_full_version": "3.11.7", "os_name": "posix", "platform_system": "Darwin",
           "implementation_name": "cpython", "platform_python_implementation": "CPython",
           "platform_release": "", "platform_version": "", "implementation_version": "3.11.7"}

PYLOCK = """\
    lock-version = "1.0"
    created-by = "someone"
    environments = ["sys_platform == 'darwin'", "sys_platform == 'linux'"]
    [[packages]]
    name = "numpy"
    version = "2.1.3"
    marker = "sys_platform == 'darwin'"
    [[packages]]
    name = "numpy"
    version = "2.1.2"
    marker = "sys_platform == 'linux'"
    [[packages]]
    name = "six"
    version = "1.16.0"
    """

PIXI = """\
    version: 6
    environments:
      default:
        channels:
        - url: https://conda.anaconda.org/conda-forge/
        packages:
          linux-64:
          - conda: https://conda.anaconda.org/conda-forge/linux-64/numpy-2.1.2-py311h_0.conda
          - pypi: https://files.example.org/six-1.16.0-py2.py3-none-any.whl
          osx-arm64:
          - conda: https://conda.anaconda.org/conda-forge/osx-arm64/numpy-2.1.3-py311h_0.conda
          - pypi: https://files.example.org/six-1.16.0-py2.py3-none-any.whl
    packages:
    - conda: https://conda.anaconda.org/conda-forge/linux-64/numpy-2.1.2-py311h_0.conda
      sha256: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
    - conda: https://conda.anaconda.org/conda-forge/osx-arm64/numpy-2.1.3-py311h_0.conda
      sha256: bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
    - pypi: https://files.example.org/six-1.16.0-py2.py3-none-any.whl
      name: six
      version: 1.16.0
    """


def mac(tmp_path: Path, numpy: str = "2.1.3") -> Snapshot:
    locks, notes = project_locks(tmp_path)
    assert notes == ()
    return Snapshot(
        interpreter=Interpreter(implementation="cpython", version="3.11.7",
                                platform="macosx-14.0-arm64"),
        environment=MAC_ENV, prefix="/env",
        dists=tuple(InstalledDist(name=n, version="1.0") for n in MANDATORY) + (
            InstalledDist(name="numpy", version=numpy),
            InstalledDist(name="six", version="1.16.0"),
            InstalledDist(name="mine", version="0.1", source=EditableSource(path="/m"))),
        project_locks=locks,
    )


def pins(decided) -> dict[str, str]:
    return {d.key: d.specifier for d in decided.decisions if d.action == "pin"}


def test_a_matching_pylock_gives_the_linux_versions(tmp_path: Path):
    (tmp_path / "pylock.toml").write_text(textwrap.dedent(PYLOCK))
    decided = plan(mac(tmp_path))
    assert decided.project_lock == str(tmp_path / "pylock.toml")
    assert pins(decided)["numpy"] == "==2.1.2" and pins(decided)["six"] == "==1.16.0"
    assert next(d for d in decided.decisions if d.key == "numpy").fallbacks == ()
    assert pins(decided)["dask"] == "==1.0"  # Dask stays as here, lock or not


def test_a_matching_pixi_lock_gives_the_linux_versions(tmp_path: Path):
    (tmp_path / "pixi.lock").write_text(textwrap.dedent(PIXI))
    decided = plan(mac(tmp_path))
    assert decided.project_lock == str(tmp_path / "pixi.lock")
    assert pins(decided)["numpy"] == "==2.1.2"


def test_a_lock_for_other_platforms_or_another_environment_is_not_used(tmp_path: Path):
    (tmp_path / "pylock.toml").write_text(
        textwrap.dedent(PYLOCK).replace("\"sys_platform == 'linux'\"]", "]"))
    decided = plan(mac(tmp_path))
    assert decided.project_lock == "" and pins(decided)["numpy"] == "==2.1.3"
    assert any("not resolved for linux-x86_64" in p.message for p in decided.problems)

    (tmp_path / "pylock.toml").write_text(textwrap.dedent(PYLOCK))
    other = plan(mac(tmp_path, numpy="2.0.0"))
    assert other.project_lock == ""
    assert any("numpy 2.0.0 here, 2.1.3 in the lock" in p.message for p in other.problems)


def test_same_platform_and_packsync_locks_are_left_alone(tmp_path: Path):
    (tmp_path / "pylock.toml").write_text(textwrap.dedent(PYLOCK))
    snapshot = mac(tmp_path)
    linux = replace(snapshot, interpreter=replace(snapshot.interpreter, platform="linux-x86_64"))
    assert plan(linux).project_lock == ""  # exact anyway
    (tmp_path / "pylock.toml").write_text(textwrap.dedent(PYLOCK) + "[tool.packsync]\n"
                                          "format = 1\n")
    locks, notes = project_locks(tmp_path)
    assert locks == () and "written by packsync" in notes[0]


def test_locks_are_looked_for_up_to_the_project_root(tmp_path: Path):
    (tmp_path / "pylock.toml").write_text(textwrap.dedent(PYLOCK))
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    assert len(project_locks(tmp_path / "sub" / "deeper")[0]) == 1
    (tmp_path / "sub" / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert project_locks(tmp_path / "sub" / "deeper") == ((), ())
    (tmp_path / "sub" / "uv.lock").write_text("not toml [[[")
    locks, notes = project_locks(tmp_path / "sub")
    assert locks == () and "cannot be read" in notes[0]


UV_LOCK = """\
version = 1
revision = 2
requires-python = ">=3.10"
resolution-markers = [
    "sys_platform == 'darwin'",
    "sys_platform != 'darwin'",
]

[[package]]
name = "app"
version = "0.1.0"
source = { editable = "." }
dependencies = [
    { name = "numpy", version = "2.1.3", source = { registry = "https://pypi.org/simple" }, marker = "sys_platform == 'darwin'" },
    { name = "numpy", version = "2.1.2", source = { registry = "https://pypi.org/simple" }, marker = "sys_platform != 'darwin'" },
]

[package.metadata]
requires-dist = [{ name = "numpy" }]

[[package]]
name = "numpy"
version = "2.1.2"
source = { registry = "https://pypi.org/simple" }
resolution-markers = [
    "sys_platform != 'darwin'",
]
sdist = { url = "https://files/numpy-2.1.2.tar.gz", hash = "sha256:00", size = 1 }
wheels = [
    { url = "https://files/numpy-2.1.2-cp311-cp311-manylinux_2_28_x86_64.whl", hash = "sha256:01", size = 1 },
]

[[package]]
name = "numpy"
version = "2.1.3"
source = { registry = "https://pypi.org/simple" }
resolution-markers = ["sys_platform == 'darwin'"]
wheels = [
    { url = "https://files/numpy-2.1.3-cp311-cp311-macosx_14_0_arm64.whl", hash = "sha256:02", size = 1 },
]
"""


def test_locks_are_read_from_their_outline_as_from_the_whole_file(tmp_path: Path):
    import tomllib

    from packsync.scan.project_locks import _UV_LOCK_KEYS, _outline, _uv_lock

    path = tmp_path / "uv.lock"
    whole = _uv_lock(path, tomllib.loads(UV_LOCK))
    assert _uv_lock(path, tomllib.loads(_outline(UV_LOCK, "[[package]]", _UV_LOCK_KEYS))) == whole
    assert [(p.name, p.version, p.marker) for p in whole.packages] == [
        ("numpy", "2.1.2", "sys_platform != 'darwin'"),
        ("numpy", "2.1.3", "sys_platform == 'darwin'"),
    ]
    path.write_text(UV_LOCK)
    assert plan(mac(tmp_path, numpy="2.1.3")).project_lock == str(path)
    assert pins(plan(mac(tmp_path, numpy="2.1.3")))["numpy"] == "==2.1.2"

    from packsync.scan.project_locks import _PYLOCK_KEYS, _pylock

    pylock = textwrap.dedent(PYLOCK) + (
        'wheels = [\n    { url = "https://files/six.whl", hashes = { sha256 = "00" } },\n]\n'
        '[packages.tool.x]\nname = "not a package"\n')
    whole_pylock = _pylock(path, tomllib.loads(pylock))
    outline = _outline(pylock, "[[packages]]", _PYLOCK_KEYS)
    assert "wheels" not in outline and _pylock(path, tomllib.loads(outline)) == whole_pylock


def test_a_matching_pixi_lock_gives_conda_packages_their_linux_version(tmp_path: Path):
    from packsync.conda.model import CondaEnvironment, CondaPackage
    from packsync.sources import CondaSource

    (tmp_path / "pixi.lock").write_text(textwrap.dedent(PIXI))
    base = mac(tmp_path)
    packages = (
        CondaPackage(name="numpy", version="2.1.3", build="py311h_0", subdir="osx-arm64",
                     python_dists=("numpy",)),
        CondaPackage(name="python", version="3.11.7", build="h_0", subdir="osx-arm64"),
    )
    conda = CondaEnvironment(prefix="/env", subdir="osx-arm64", channels=("conda-forge",),
                             packages=packages)
    dists = tuple(d if d.name != "numpy" else replace(d, source=CondaSource(package="numpy"))
                  for d in base.dists)
    decided = plan(replace(base, conda=conda, dists=dists))
    assert decided.project_lock == str(tmp_path / "pixi.lock") and decided.conda is not None
    specs = {d.name: (d.spec, d.reason) for d in decided.conda.decisions}
    assert specs["numpy"] == (
        f"numpy ==2.1.2 py311h_0[sha256={'a' * 64}]",
        "pixi.lock (environment default) locks numpy-2.1.2-py311h_0.conda for linux-64 "
        "(linux-x86_64)")
    assert specs["python"][0] == "python ==3.11.7"  # the same Python, as ever

    elsewhere = replace(conda, packages=(replace(packages[0], version="2.0.0"), packages[1]))
    other = plan(replace(base, conda=elsewhere, dists=dists))
    assert other.project_lock == "" and other.conda is not None
    assert "pixi.lock" not in {d.name: d.reason for d in other.conda.decisions}["numpy"]
