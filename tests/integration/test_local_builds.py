"""Wheels of local code from real installs: editable src and flat layouts, a compiled
extension, a changed non-editable directory, a wheel file and an sdist."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace

import pytest

from packsync.build.wheels import build_local_code
from packsync.errors import BuildError
from packsync.model import Target
from packsync.store import LocalStore
from tests.support.builds import Steps, Venv, plan_for, wheel_text
from tests.support.projects import make_project, setuptools_project
from tests.support.venvs import UV, hermetic_env

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """One venv holding every kind of local install; built once for the module."""
    tmp = tmp_path_factory.mktemp("local")
    # a directory name that is no valid distribution name
    src = make_project(tmp / "my project (v2)", "srcpkg", "VALUE = 'src-1'\n")
    flat = setuptools_project(tmp / "flat", "flatpkg", {
        "flatpkg.py": "VALUE = 'flat-1'\n",
    }, tool="[tool.setuptools]\npy-modules = ['flatpkg']\n")
    cext = setuptools_project(tmp / "cext", "cext", {
        "cext.c": """\
            #include <Python.h>
            static PyObject *answer(PyObject *self, PyObject *args) { return PyLong_FromLong(42); }
            static PyMethodDef methods[] = {{"answer", answer, METH_NOARGS, ""}, {NULL, NULL, 0, NULL}};
            static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "cext", "", -1, methods};
            PyMODINIT_FUNC PyInit_cext(void) { return PyModule_Create(&module); }
            """,
    }, setup_py="from setuptools import Extension, setup\n"
                "setup(ext_modules=[Extension('cext', ['cext.c'])])\n")
    pure = make_project(tmp / "puredir", "puredir", "VALUE = 'installed'\n")
    wheelsrc = make_project(tmp / "wheelsrc", "wheelpkg", "VALUE = 'wheel-1'\n")
    sdistsrc = make_project(tmp / "sdistsrc", "sdistpkg", "VALUE = 'sdist-1'\n")
    dist = tmp / "dist"
    for project, kind in ((wheelsrc, "--wheel"), (sdistsrc, "--sdist")):
        subprocess.run([UV, "build", "--quiet", kind, "--out-dir", str(dist), str(project)],
                       check=True, env=hermetic_env(), capture_output=True)
    wheel = next(dist.glob("wheelpkg-*.whl"))
    sdist = next(dist.glob("sdistpkg-*.tar.gz"))
    venv = Venv(tmp / "venv")
    venv.install("-e", str(src), "-e", str(flat), str(cext), str(pure), str(wheel), str(sdist))
    return {"venv": venv, "tmp": tmp, "src": src, "flat": flat, "pure": pure, "wheel": wheel}


@pytest.fixture
def store(tmp_path):
    return LocalStore(tmp_path / "store")


def test_every_local_kind_builds_and_unchanged_source_is_not_rebuilt(installed, store, tmp_path):
    if shutil.which("gcc") is None and shutil.which("cc") is None:
        pytest.skip("no C compiler on this machine for the compiled extension")
    snapshot = installed["venv"].snapshot()
    names = ("srcpkg", "flatpkg", "cext", "puredir", "wheelpkg", "sdistpkg")
    plan = plan_for(snapshot, *names)
    steps = Steps()
    artifacts = build_local_code(plan, store=store, cache=tmp_path / "cache", snapshot=snapshot,
                                 reporter=steps)
    assert set(artifacts) == set(names)
    assert wheel_text(store, artifacts["srcpkg"].sha256, "srcpkg/__init__.py", tmp_path) \
        == "VALUE = 'src-1'\n"
    assert artifacts["srcpkg"].filename.startswith("srcpkg-0.1.0-")
    assert wheel_text(store, artifacts["flatpkg"].sha256, "flatpkg.py", tmp_path) \
        == "VALUE = 'flat-1'\n"
    assert "-cp3" in artifacts["cext"].filename and "linux" in artifacts["cext"].filename
    assert wheel_text(store, artifacts["sdistpkg"].sha256, "sdistpkg/__init__.py", tmp_path) \
        == "VALUE = 'sdist-1'\n"
    assert artifacts["wheelpkg"].filename == installed["wheel"].name  # uploaded as is
    assert any("repacking the installed puredir" in m for m in steps.messages)

    again = Steps()
    second = build_local_code(plan, store=store, cache=tmp_path / "cache", snapshot=snapshot,
                              reporter=again)
    assert second == artifacts and again.messages == []


def test_one_changed_file_rebuilds_exactly_one_wheel(installed, store, tmp_path):
    snapshot = installed["venv"].snapshot()
    plan = plan_for(snapshot, "srcpkg", "flatpkg")
    cache = tmp_path / "cache"
    first = build_local_code(plan, store=store, cache=cache, snapshot=snapshot)
    module = installed["src"] / "src" / "srcpkg" / "__init__.py"
    original = module.read_text()
    module.write_text("VALUE = 'src-2'\n")
    try:
        steps = Steps()
        second = build_local_code(plan, store=store, cache=cache, snapshot=snapshot,
                                  reporter=steps)
    finally:
        module.write_text(original)
    assert steps.messages == ["building srcpkg"]
    assert second["flatpkg"] == first["flatpkg"]
    assert second["srcpkg"].sha256 != first["srcpkg"].sha256
    assert wheel_text(store, second["srcpkg"].sha256, "srcpkg/__init__.py", tmp_path) \
        == "VALUE = 'src-2'\n"


def test_a_changed_directory_install_ships_what_was_installed(installed, store, tmp_path):
    module = installed["pure"] / "src" / "puredir" / "__init__.py"
    module.write_text("VALUE = 'edited after install'\n")
    snapshot = installed["venv"].snapshot()
    artifacts = build_local_code(plan_for(snapshot, "puredir"), store=store,
                                 cache=tmp_path / "cache", snapshot=snapshot)
    assert wheel_text(store, artifacts["puredir"].sha256, "puredir/__init__.py", tmp_path) \
        == "VALUE = 'installed'\n"


def test_compiled_local_code_is_refused_for_another_platform(installed, store, tmp_path):
    snapshot = installed["venv"].snapshot()
    plan = plan_for(snapshot, "cext", "srcpkg")
    plan = replace(plan, target=Target(os="linux", machine="aarch64", libc="manylinux_2_28",
                                       python=plan.target.python))
    with pytest.raises(BuildError, match="compiled code") as caught:
        build_local_code(plan, store=store, cache=tmp_path / "cache", snapshot=snapshot)
    assert caught.value.package == "cext" and "aarch64" in str(caught.value)


def test_a_wheel_file_that_is_not_the_installed_one_is_refused(installed, store, tmp_path):
    snapshot = installed["venv"].snapshot()
    other = make_project(tmp_path / "other", "wheelpkg", "VALUE = 'not what was installed'\n")
    built = tmp_path / "built"
    subprocess.run([UV, "build", "--quiet", "--wheel", "--out-dir", str(built), str(other)],
                   check=True, env=hermetic_env(), capture_output=True)
    dist = snapshot.get("wheelpkg")
    assert dist is not None
    swapped = tmp_path / "swapped" / installed["wheel"].name
    swapped.parent.mkdir()
    shutil.copy(next(built.glob("*.whl")), swapped)
    source = replace(dist.source, url=swapped.as_uri())  # type: ignore[call-arg]
    plan = plan_for(snapshot, "wheelpkg")
    plan = replace(plan, decisions=(replace(plan.decisions[0], source=source),))
    with pytest.raises(BuildError, match="not the wheel wheelpkg was installed from") as caught:
        build_local_code(plan, store=store, cache=tmp_path / "cache", snapshot=snapshot)
    assert "wheelpkg/__init__.py" in str(caught.value)
