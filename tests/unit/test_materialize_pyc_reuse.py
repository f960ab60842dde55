"""Reusing an earlier environment's byte code: only where the import system would accept it.

Acceptance is checked by the import system itself: a loader that refuses to compile
source can only return code from a ``.pyc`` that ``SourceLoader.get_code`` validated.
"""

from __future__ import annotations

import ast
import importlib.machinery
import os
import py_compile
import sys
from importlib.util import cache_from_source
from pathlib import Path
from types import CodeType

import pytest

from packsync.hostside import pyc_reuse
from packsync.hostside.layout import READY_MARKER
from packsync.materialize.bytecode import bytecode_donor
from tests.support.caches import make_ready

SITE = Path("lib") / "site-packages"


class _NoCompiling(importlib.machinery.SourceFileLoader):
    def source_to_code(self, *args: object, **kwargs: object) -> CodeType:  # type: ignore[override]
        raise AssertionError("the .pyc was refused: the source was compiled")


def accepted_code(source: Path) -> CodeType:
    """The code the import system loads for ``source``, which must come from its ``.pyc``."""
    code = _NoCompiling("mod", str(source)).get_code("mod")
    assert code is not None
    return code


def envs(tmp_path: Path) -> tuple[Path, Path]:
    donor, new = tmp_path / "donor", tmp_path / "new"
    (donor / SITE).mkdir(parents=True)
    (new / SITE).mkdir(parents=True)
    return donor, new


def donor_module(donor: Path, text: str, **compile_options: object) -> Path:
    source = donor / SITE / "mod.py"
    source.write_text(text)
    py_compile.compile(str(source), doraise=True, **compile_options)  # type: ignore[arg-type]
    return source


def reuse(new: Path, donor: Path) -> bool:
    return pyc_reuse.reuse(str(new / SITE / "mod.py"), str(new), str(donor))


def test_the_same_file_gets_the_donors_pyc_linked_and_its_own_path(tmp_path):
    donor, new = envs(tmp_path)
    old = donor_module(donor, "def boom():\n    raise ValueError\n")
    os.link(old, new / SITE / "mod.py")  # as uv links both from its cache

    assert reuse(new, donor)
    pyc = Path(cache_from_source(str(new / SITE / "mod.py")))
    assert pyc.stat().st_ino == Path(cache_from_source(str(old))).stat().st_ino
    code = accepted_code(new / SITE / "mod.py")
    assert code.co_filename == str(new / SITE / "mod.py")  # tracebacks name this environment
    namespace: dict[str, object] = {}
    exec(code, namespace)
    with pytest.raises(ValueError) as raised:
        namespace["boom"]()  # type: ignore[operator]
    assert raised.traceback[-1].path == new / SITE / "mod.py"


def test_other_bytes_of_the_same_size_and_mtime_are_compiled_not_reused(tmp_path):
    # what a reproducible wheel build of an edited file looks like to a timestamp check
    donor, new = envs(tmp_path)
    old = donor / SITE / "mod.py"
    old.write_text("VALUE = 0\n")
    (new / SITE / "mod.py").write_text("VALUE = 1\n")
    for path in (old, new / SITE / "mod.py"):
        os.utime(path, (1_600_000_000, 1_600_000_000))
    py_compile.compile(str(old), doraise=True)

    assert not reuse(new, donor)
    assert not Path(cache_from_source(str(new / SITE / "mod.py"))).exists()


def test_the_same_bytes_with_another_mtime_get_a_header_for_this_file(tmp_path):
    donor, new = envs(tmp_path)
    donor_module(donor, "VALUE = 41 + 1\n")
    (new / SITE / "mod.py").write_text("VALUE = 41 + 1\n")  # a copy, not a link
    os.utime(new / SITE / "mod.py", (1_700_000_000, 1_700_000_000))

    assert reuse(new, donor)
    code = accepted_code(new / SITE / "mod.py")
    namespace: dict[str, object] = {}
    exec(code, namespace)
    assert namespace["VALUE"] == 42
    assert code.co_filename == str(new / SITE / "mod.py")


def test_a_pyc_stale_in_the_donor_is_not_given_a_new_header(tmp_path):
    # the donor's .pyc is of older bytes than the donor's source: its body is not this code
    donor, new = envs(tmp_path)
    old = donor_module(donor, "VALUE = 1\n")
    old.write_text("VALUE = 2\n")
    os.utime(old, (1_600_000_000, 1_600_000_000))
    (new / SITE / "mod.py").write_text("VALUE = 2\n")
    os.utime(new / SITE / "mod.py", (1_700_000_000, 1_700_000_000))

    assert not reuse(new, donor)
    assert not Path(cache_from_source(str(new / SITE / "mod.py"))).exists()


def test_a_checked_hash_pyc_is_reused_for_the_same_bytes(tmp_path):
    donor, new = envs(tmp_path)
    donor_module(donor, "VALUE = 7\n",
                 invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
    (new / SITE / "mod.py").write_text("VALUE = 7\n")

    assert reuse(new, donor)
    accepted_code(new / SITE / "mod.py")


def test_byte_code_of_another_interpreter_is_not_reused(tmp_path):
    donor, new = envs(tmp_path)
    old = donor_module(donor, "VALUE = 7\n")
    os.link(old, new / SITE / "mod.py")
    pyc = Path(cache_from_source(str(old)))
    pyc.write_bytes(b"\x00\x00\r\n" + pyc.read_bytes()[4:])  # another magic number

    assert not reuse(new, donor)


def test_a_file_the_donor_lacks_is_compiled(tmp_path):
    donor, new = envs(tmp_path)
    (new / SITE / "mod.py").write_text("VALUE = 7\n")
    assert not reuse(new, donor)
    (donor / SITE / "mod.py").write_text("VALUE = 7\n")  # a source without byte code
    assert not reuse(new, donor)


def test_compile_all_writes_what_the_import_system_accepts(tmp_path):
    paths = []
    for i in range(pyc_reuse._PARALLEL_FROM + 1):  # the parallel path
        path = tmp_path / f"m{i}.py"
        path.write_text(f"VALUE = {i}\n")
        paths.append(str(path))
    (tmp_path / "broken.py").write_text("def (:\n")  # skipped quietly, as uv does
    pyc_reuse.compile_all([*paths, str(tmp_path / "broken.py")])
    for path in paths:
        accepted_code(Path(path))
    assert not Path(cache_from_source(str(tmp_path / "broken.py"))).exists()


def fake_env(cache: Path, name: str, version: str | None, *, ready: bool, used: float = 0) -> Path:
    path = cache / "envs" / name
    path.mkdir(parents=True)
    if version is not None:
        (path / "pyvenv.cfg").write_text(
            f"home = /usr/bin\nimplementation = CPython\nversion_info = {version}\n")
    if ready:
        make_ready(path, used=used)
    return path


def test_the_donor_is_the_last_used_ready_environment_of_the_same_python(tmp_path):
    new = fake_env(tmp_path, "new", "3.11.7", ready=False)
    assert bytecode_donor(tmp_path, new) is None
    older = fake_env(tmp_path, "older", "3.11.7", ready=True, used=1_000)
    recent = fake_env(tmp_path, "recent", "3.11.2", ready=True, used=2_000)
    fake_env(tmp_path, "unfinished", "3.11.7", ready=False)
    fake_env(tmp_path, "other-python", "3.12.1", ready=True, used=3_000)
    fake_env(tmp_path, "conda", None, ready=True, used=4_000)
    assert bytecode_donor(tmp_path, new) == recent
    os.utime(older / READY_MARKER)  # a relaunch used it
    assert bytecode_donor(tmp_path, new) == older


def test_a_conda_environment_gets_no_donor(tmp_path):
    fake_env(tmp_path, "venv", "3.11.7", ready=True, used=1_000)
    conda = fake_env(tmp_path, "conda-env", None, ready=False)
    assert bytecode_donor(tmp_path, conda) is None


def test_the_reuse_script_imports_nothing_but_the_standard_library():
    # it runs in the new environment, where packsync is not installed
    tree = ast.parse(Path(pyc_reuse.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)}
    assert "compileall" in imported
    assert imported <= sys.stdlib_module_names | {"__future__"}


def test_a_site_donor_mirrors_the_site_packages_whatever_its_own_layout(tmp_path):
    # the client's site-packages (Debian's dist-packages, say) against the environment's
    client_site = tmp_path / "usr" / "lib" / "python3" / "dist-packages"
    new_site = tmp_path / "env" / SITE
    client_site.mkdir(parents=True)
    new_site.mkdir(parents=True)
    old = client_site / "mod.py"
    old.write_text("VALUE = 3\n")
    py_compile.compile(str(old), doraise=True)
    os.link(old, new_site / "mod.py")

    given = pyc_reuse.donors(["--site", str(client_site)], str(tmp_path / "env"), [str(new_site)])
    assert given == [(str(new_site), str(client_site))]
    assert pyc_reuse.reuse(str(new_site / "mod.py"), *given[0])
    accepted_code(new_site / "mod.py")


def test_a_file_outside_what_the_donor_mirrors_is_compiled(tmp_path):
    donor, new = envs(tmp_path)
    old = donor_module(donor, "VALUE = 7\n")
    os.link(old, new / SITE / "mod.py")
    assert not pyc_reuse.reuse(str(new / SITE / "mod.py"), str(new / "lib" / "other"), str(donor))
    assert not pyc_reuse.reuse(str(new / SITE / "mod.py"), str(new / SITE / "mo"), str(donor))


def test_donors_are_asked_in_the_order_given(tmp_path):
    sites = [str(tmp_path / "env" / SITE), str(tmp_path / "env" / "lib64")]
    given = pyc_reuse.donors([str(tmp_path / "old"), "--site", str(tmp_path / "client")],
                             str(tmp_path / "env"), sites)
    assert given == [(str(tmp_path / "env"), str(tmp_path / "old")),
                     (sites[0], str(tmp_path / "client")), (sites[1], str(tmp_path / "client"))]
