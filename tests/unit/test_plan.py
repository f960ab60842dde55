"""The rules of package sync, on snapshots built in memory."""

from __future__ import annotations

import pytest

from packsync.errors import PlanError
from packsync.model import (
    ArchiveSource,
    EditableSource,
    InstalledDist,
    Interpreter,
    PlanOptions,
    Snapshot,
    Target,
    VcsSource,
)
from packsync.plan import MANDATORY, default_target, plan

LINUX_ENV = {"sys_platform": "linux", "platform_machine": "x86_64", "python_version": "3.11",
             "python_full_version": "3.11.7", "os_name": "posix",
             "platform_system": "Linux", "implementation_name": "cpython",
             "platform_python_implementation": "CPython", "platform_release": "",
             "platform_version": "", "implementation_version": "3.11.7"}


def snapshot(*extra: InstalledDist, platform: str = "linux-x86_64",
             without: tuple[str, ...] = ()) -> Snapshot:
    base = [InstalledDist(name=n, version="1.2.3") for n in MANDATORY if n not in without]
    return Snapshot(
        interpreter=Interpreter(implementation="cpython", version="3.11.7", platform=platform,
                                libc="manylinux_2_36"),
        environment=LINUX_ENV,
        prefix="/env",
        dists=tuple(base) + extra,
    )


def decision(p, name):
    return next(d for d in p.decisions if d.name == name)


def test_same_platform_pins_exact_versions():
    p = plan(snapshot(InstalledDist(name="httpx", version="0.28.1")))
    d = decision(p, "httpx")
    assert (d.action, d.specifier) == ("pin", "==0.28.1")
    assert "exact" in d.reason


def test_default_target_is_the_client_platform():
    t = default_target(snapshot())
    assert (t.platform, t.python, t.uv_platform) == ("linux-x86_64", "3.11.7",
                                                     "x86_64-manylinux_2_36")


def test_missing_mandatory_packages_are_all_named():
    with pytest.raises(PlanError) as caught:
        plan(snapshot(without=("msgpack", "tornado")))
    assert "msgpack" in str(caught.value) and "tornado" in str(caught.value)
    assert "pip install tornado msgpack" in caught.value.hint


def test_mandatory_packages_cannot_be_ignored():
    with pytest.raises(PlanError, match="cannot be ignored"):
        plan(snapshot(), options=PlanOptions.create(ignore=["Dask"]))


def test_ignore_skips_a_package_nobody_requires():
    p = plan(snapshot(InstalledDist(name="Black", version="24.1")),
             options=PlanOptions.create(ignore=["black"]))
    assert decision(p, "Black").action == "ignore"
    assert all(d.name != "Black" for d in p.synced())


def test_ignored_package_required_by_a_synced_one_is_kept_with_its_reason():
    p = plan(
        snapshot(
            InstalledDist(name="httpx", version="0.28.1", requires=("idna", "rich; extra == 'x'")),
            InstalledDist(name="idna", version="3.7"),
            InstalledDist(name="rich", version="13.0"),
        ),
        options=PlanOptions.create(ignore=["idna", "rich"]),
    )
    assert decision(p, "idna").action == "pin"
    assert "required by httpx" in decision(p, "idna").reason
    assert decision(p, "rich").action == "ignore"  # only an extra pulls it in


def test_local_code_is_built_and_local_wheels_uploaded():
    p = plan(snapshot(
        InstalledDist(name="mine", version="0.1", source=EditableSource(path="/src/mine")),
        InstalledDist(name="fromgit", version="2.0",
                      source=VcsSource(vcs="git", url="file:///r", commit="abc")),
        InstalledDist(name="wheel-file", version="1.0",
                      source=ArchiveSource(url="file:///w/wheel_file-1.0-py3-none-any.whl")),
        InstalledDist(name="remote", version="1.0",
                      source=ArchiveSource(url="https://example.org/remote-1.0.tar.gz")),
    ))
    assert decision(p, "mine").action == "build"
    assert decision(p, "fromgit").action == "build"
    assert decision(p, "wheel-file").action == "upload"
    assert decision(p, "remote").specifier == "@ https://example.org/remote-1.0.tar.gz"
    assert {d.name for d in p.local_code()} == {"mine", "fromgit", "wheel-file"}


def test_other_platform_matches_major_minor_except_mandatory_and_local_code():
    p = plan(
        snapshot(
            InstalledDist(name="numpy", version="2.1.3"),
            InstalledDist(name="mine", version="0.1.7", source=EditableSource(path="/m")),
            platform="macosx-14.0-arm64",
        ),
        target=Target(python="3.11.7"),
    )
    assert decision(p, "numpy").specifier == "==2.1.*"
    assert decision(p, "dask").specifier == "==1.2.3"
    assert decision(p, "mine").specifier == "==0.1.7"


def test_broken_metadata_stops_the_plan_unless_ignored():
    broken = InstalledDist(name="weird", version="x!y", problems=("version 'x!y' is not valid",))
    with pytest.raises(PlanError) as caught:
        plan(snapshot(broken))
    assert "weird" in str(caught.value) and "ignore" in caught.value.hint
    assert decision(plan(snapshot(broken), options=PlanOptions.create(ignore=["weird"])),
                    "weird").action == "ignore"
