"""The rules of package sync, on snapshots built in memory."""

from __future__ import annotations

import pytest

from packsync.errors import PlanError
from packsync.model import InstalledDist, Interpreter, PlanOptions, Snapshot, Target
from packsync.plan.rules import MANDATORY, enforce, plan
from packsync.plan.targets import default_target
from packsync.sources import ArchiveSource, EditableSource, VcsSource

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
    numpy = decision(p, "numpy")
    assert (numpy.specifier, numpy.fallbacks) == ("==2.1.3", ("<=2.1.3,==2.1.*", "==2.1.*"))
    assert decision(p, "dask").fallbacks == () and decision(p, "mine").fallbacks == ()
    assert decision(p, "dask").specifier == "==1.2.3"
    assert decision(p, "mine").specifier == "==0.1.7"


def test_broken_metadata_stops_the_plan_unless_ignored():
    broken = InstalledDist(name="weird", version="x!y", problems=("version 'x!y' is not valid",))
    with pytest.raises(PlanError) as caught:
        enforce(plan(snapshot(broken)).problems, "critical")
    assert "weird" in str(caught.value) and "ignore" in caught.value.hint
    assert decision(plan(snapshot(broken), options=PlanOptions.create(ignore=["weird"])),
                    "weird").action == "ignore"


MAC_ENV = {**LINUX_ENV, "sys_platform": "darwin", "platform_system": "Darwin",
           "platform_machine": "arm64"}
WINDOWS_ENV = {**LINUX_ENV, "sys_platform": "win32", "platform_system": "Windows",
               "platform_machine": "AMD64", "os_name": "nt"}


def foreign(environment, platform, *extra: InstalledDist) -> Snapshot:
    base = snapshot(*extra)
    return Snapshot(
        interpreter=Interpreter(implementation="cpython", version="3.11.7", platform=platform),
        environment=environment,
        prefix="/env",
        dists=base.dists,
    )


def test_platform_only_packages_are_dropped_with_the_requirement_that_pulled_them():
    s = foreign(
        MAC_ENV, "macosx-14.0-arm64",
        InstalledDist(name="ipykernel", version="6.29.5", requested=True,
                      requires=("appnope; sys_platform == 'darwin'", "tornado>=6")),
        InstalledDist(name="appnope", version="0.1.4"),
    )
    p = plan(s)
    appnope = decision(p, "appnope")
    assert appnope.action == "ignore"
    assert "ipykernel" in appnope.reason and "darwin" in appnope.reason
    assert decision(p, "ipykernel").action == "pin"


def test_a_package_needed_only_by_a_dropped_one_is_dropped_too():
    s = foreign(
        WINDOWS_ENV, "win-amd64",
        InstalledDist(name="jupyter-core", version="5.7.2", requested=True,
                      requires=("pywin32>=300; sys_platform == 'win32'",)),
        InstalledDist(name="pywin32", version="306", requires=("pywin32-ctypes",)),
        InstalledDist(name="pywin32-ctypes", version="0.2.3"),
    )
    p = plan(s)
    assert decision(p, "pywin32").action == "ignore"
    ctypes = decision(p, "pywin32-ctypes")
    assert ctypes.action == "ignore" and "pywin32" in ctypes.reason


def test_a_platform_only_package_requested_directly_is_kept():
    s = foreign(
        WINDOWS_ENV, "win-amd64",
        InstalledDist(name="jupyter-core", version="5.7.2",
                      requires=("pywin32>=300; sys_platform == 'win32'",)),
        InstalledDist(name="pywin32", version="306", requested=True),
    )
    assert decision(plan(s), "pywin32").action == "pin"


def test_a_package_also_needed_on_linux_is_kept():
    s = foreign(
        MAC_ENV, "macosx-14.0-arm64",
        InstalledDist(name="a", version="1.0", requested=True,
                      requires=("six; sys_platform == 'darwin'",)),
        InstalledDist(name="b", version="1.0", requested=True, requires=("six",)),
        InstalledDist(name="six", version="1.16.0"),
    )
    assert decision(plan(s), "six").action == "pin"


def test_same_platform_never_drops_anything():
    s = snapshot(
        InstalledDist(name="ipykernel", version="6.29.5",
                      requires=("appnope; sys_platform == 'darwin'",)),
        InstalledDist(name="appnope", version="0.1.4"),
    )
    assert decision(plan(s), "appnope").action == "pin"


def test_strict_pins_exactly_across_platforms():
    s = foreign(MAC_ENV, "macosx-14.0-arm64", InstalledDist(name="numpy", version="2.1.3"))
    strict = plan(s, options=PlanOptions.create(strict=True))
    assert decision(strict, "numpy").fallbacks == ()
    assert "strict" in decision(strict, "numpy").reason
    assert decision(plan(s), "numpy").fallbacks == ("<=2.1.3,==2.1.*", "==2.1.*")


def test_only_syncs_the_named_packages_the_mandatory_ones_and_their_requirements():
    s = snapshot(
        InstalledDist(name="pandas", version="2.2.3", requires=("numpy>=1.26",)),
        InstalledDist(name="numpy", version="2.1.3"),
        InstalledDist(name="scipy", version="1.14.1", requires=("numpy",)),
        InstalledDist(name="toolz", version="1.0.0"),
    )
    s = Snapshot(interpreter=s.interpreter, environment=s.environment, prefix="/env",
                 dists=tuple(d if d.name != "dask" else InstalledDist(
                     name="dask", version="1.2.3", requires=("toolz>=0.10",)) for d in s.dists))
    p = plan(s, options=PlanOptions.create(only=["pandas"]))
    synced = {d.name for d in p.synced()}
    assert synced == {"pandas", "numpy", "toolz", *MANDATORY}
    assert "only" in decision(p, "scipy").reason


def test_only_with_an_unknown_name_is_an_error():
    with pytest.raises(PlanError) as caught:
        plan(snapshot(), options=PlanOptions.create(only=["nosuchpkg"]))
    assert "nosuchpkg" in str(caught.value)


def test_dependency_conflicts_are_warnings_and_critical_under_strict():
    s = snapshot(
        InstalledDist(name="app", version="1.0", requires=("httpx<0.20", "missing-dep")),
        InstalledDist(name="httpx", version="0.28.1"),
    )
    relaxed = plan(s)
    messages = [p.message for p in relaxed.problems]
    assert any("httpx 0.28.1 is installed" in m for m in messages)
    assert any("missing-dep" in m and "not installed" in m for m in messages)
    assert {p.severity for p in relaxed.problems} == {"warning"}
    enforce(relaxed.problems, "critical")  # only warnings: the launch goes on
    with pytest.raises(PlanError):
        enforce(relaxed.problems, "warning")
    strict = plan(s, options=PlanOptions.create(strict=True))
    with pytest.raises(PlanError) as caught:
        enforce(strict.problems, "critical")
    assert "app" in caught.value.package and "httpx" in caught.value.package


def test_notes_of_the_scan_stop_only_under_fail_on_any():
    s = snapshot()
    s = Snapshot(interpreter=s.interpreter, environment=s.environment, prefix="/env",
                 dists=s.dists, notes=("skipped a stray foo.egg-info in /work",))
    p = plan(s)
    enforce(p.problems, "warning")
    with pytest.raises(PlanError) as caught:
        enforce(p.problems, "any")
    assert "foo.egg-info" in str(caught.value)


def test_requirements_only_the_target_needs_are_added_and_reported():
    s = foreign(MAC_ENV, "macosx-14.0-arm64",
                InstalledDist(name="keyring", version="25.5.0", requested=True,
                              requires=('SecretStorage>=3.2; sys_platform == "linux"',
                                        'jeepney>=0.4.2; sys_platform == "linux"',
                                        'pywin32-ctypes; sys_platform == "win32"')))
    p = plan(s)
    added = decision(p, "SecretStorage")
    assert (added.action, added.local_version, added.specifier) == ("pin", "", ">=3.2")
    assert "keyring" in added.reason and "linux-x86_64" in added.reason
    assert decision(p, "jeepney").specifier == ">=0.4.2"
    assert not [d for d in p.decisions if d.name == "pywin32-ctypes"]
    [warning] = [w for w in p.problems if "SecretStorage" in w.message]
    assert warning.severity == "warning" and "keyring" in warning.packages
    strict = plan(s, options=PlanOptions.create(strict=True))
    assert not [d for d in strict.decisions if d.name == "SecretStorage"]
    assert any("SecretStorage" in w.message for w in strict.problems)
    same = plan(snapshot(*s.dists[-1:]))
    assert not [d for d in same.decisions if not d.local_version]


def test_resolution_fills_cluster_versions_and_reports_relaxed_pins():
    from packsync.model import Relaxation
    from packsync.plan.resolved import with_resolution

    p = plan(snapshot(InstalledDist(name="numpy", version="2.1.3"),
                      InstalledDist(name="mine", version="0.1", source=EditableSource(path="/m")),
                      platform="macosx-14.0-arm64"))
    relaxed = Relaxation(name="numpy", local_version="2.1.3", specifier="<=2.1.3,==2.1.*",
                         version="2.1.2", reason="numpy 2.1.3 has no wheel for linux-x86_64")
    resolved = with_resolution(p, {"numpy": "2.1.2", "dask": "1.2.3"}, [relaxed])
    numpy = decision(resolved, "numpy")
    assert (numpy.cluster_version, numpy.specifier) == ("2.1.2", "<=2.1.3,==2.1.*")
    assert "relaxed" in numpy.reason
    assert decision(resolved, "mine").cluster_version == "0.1"
    [warning] = resolved.problems
    assert warning.severity == "warning" and "2.1.2" in warning.message
    with pytest.raises(PlanError):
        enforce(resolved.problems, "warning")


def test_targets_by_name():
    from packsync.plan.targets import resolve_target

    s = snapshot()
    assert resolve_target(s, "linux-aarch64").uv_platform == "aarch64-manylinux_2_28"
    assert resolve_target(s, "linux-x86_64").libc == "manylinux_2_36"
    with pytest.raises(PlanError):
        resolve_target(s, "windows-amd64")
    mac = foreign(MAC_ENV, "macosx-14.0-arm64")
    assert resolve_target(mac, None).platform == "linux-x86_64"


def test_same_platform_relaxing_is_critical_unless_allowed():
    from packsync.model import IndexConfig, Relaxation
    from packsync.plan.resolved import with_resolution

    six = InstalledDist(name="six", version="1.16.9")
    client = snapshot(six)
    client = Snapshot(**{**{f: getattr(client, f) for f in ("interpreter", "environment",
                                                           "prefix", "dists")},
                         "indexes": IndexConfig(index_url="https://pypi.org/simple",
                                                find_links=("/srv/wheels",))})
    relaxed = Relaxation(name="six", local_version="1.16.9", specifier="<=1.16.9,==1.16.*",
                         version="1.16.0", reason="six 1.16.9 is not on the configured indexes")
    exact = plan(client)
    assert decision(exact, "six").if_relaxed == "critical"
    [critical] = with_resolution(exact, {"six": "1.16.0"}, [relaxed]).problems
    assert critical.severity == "critical" and critical.packages == ("six",)
    for text in ("six 1.16.9", "same platform", "https://pypi.org/simple, /srv/wheels"):
        assert text in critical.message
    assert "configure the index" in critical.hint and "relax_same_platform" in critical.hint
    with pytest.raises(PlanError, match="six 1.16.9"):
        enforce([critical], "critical")

    allowed = plan(client, options=PlanOptions.create(relax_same_platform=True))
    assert decision(allowed, "six").if_relaxed == "warning"
    [warning] = with_resolution(allowed, {"six": "1.16.0"}, [relaxed]).problems
    assert warning.severity == "warning"
    enforce([warning], "critical")
