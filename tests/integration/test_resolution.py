"""Resolution for the target before launch: real uv against real indexes and wheel files.

A find-links directory made by the test holds a package whose exact version has no
wheel for Linux, so the relax rule has something real to work on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from packsync.errors import LockError, PlanError
from packsync.lock.resolve import lock
from packsync.model import IndexConfig, InstalledDist, Interpreter, PlanOptions, Snapshot
from packsync.plan.resolved import with_resolution
from packsync.plan.rules import MANDATORY, enforce, plan
from packsync.scan import scan
from packsync.scan.indexes import discover
from packsync.store import open_store
from tests.support.projects import make_wheel
from tests.support.simple_index import serve_simple_index
from tests.support.venvs import REPO, hermetic_env

FIXTURES = REPO / "tests" / "fixtures"
PROBE = "packsync-relax-probe"
LINUX_WHEEL = "py3-none-any"
MAC_ONLY = "py3-none-macosx_11_0_arm64"
MAC = "macosx-14.0-arm64"


@pytest.fixture(scope="module")
def links(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("links")
    make_wheel(directory, PROBE, "1.2.0", LINUX_WHEEL)
    make_wheel(directory, PROBE, "1.2.3", MAC_ONLY)  # what the client has: no Linux file
    make_wheel(directory, PROBE, "1.3.0", LINUX_WHEEL)  # newer, but another minor series
    make_wheel(directory, PROBE, "2.0.0", MAC_ONLY)
    return directory


def linux_snapshot(probe_version: str, platform: str = "linux-x86_64",
                   probe: str = PROBE, indexes: IndexConfig | None = None) -> Snapshot:
    """The mandatory packages as here, and ``probe``: on Linux x86_64, the workers' own
    platform, unless ``platform`` says otherwise."""
    here = scan()
    mandatory = [here.get(name) for name in MANDATORY]
    dists = tuple(InstalledDist(name=d.name, version=d.version) for d in mandatory if d)
    return Snapshot(
        interpreter=Interpreter(implementation="cpython", version=here.interpreter.version,
                                platform=platform, libc="manylinux_2_28"),
        environment=here.environment,
        prefix="/env",
        dists=dists + (InstalledDist(name=probe, version=probe_version, requested=True),),
        indexes=indexes or IndexConfig(),
    )


def resolve(snapshot: Snapshot, links: Path, tmp_path: Path, **options):
    decided = plan(snapshot, None, PlanOptions.create(**options))
    settings = discover({"UV_FIND_LINKS": str(links), "HOME": str(tmp_path),
                         "PIP_CONFIG_FILE": os.devnull}, prefix=str(tmp_path))
    result = lock(decided, {}, store=open_store(str(tmp_path / "store")), settings=settings,
                  cache=tmp_path / "cache")
    return decided, result


def test_a_version_without_a_linux_file_is_relaxed_to_the_nearest_of_its_series(links, tmp_path):
    decided, result = resolve(linux_snapshot("1.2.3", MAC), links, tmp_path)
    assert result.versions[PROBE] == "1.2.0"
    [relaxed] = result.relaxed
    assert (relaxed.name, relaxed.local_version, relaxed.version) == (PROBE, "1.2.3", "1.2.0")
    assert "no wheel" in relaxed.reason
    resolved = with_resolution(decided, result.versions, result.relaxed)
    [warning] = [p for p in resolved.problems if PROBE in p.packages]
    assert warning.severity == "warning" and "1.2.0" in warning.message
    # the mandatory packages stay exact, and the relaxation survives a cached resolve
    for name in MANDATORY:
        local = next(d for d in decided.decisions if d.key == name).local_version
        assert result.versions[name] == local
    _, again = resolve(linux_snapshot("1.2.3", MAC), links, tmp_path)
    assert again.digest == result.digest and again.relaxed == result.relaxed


def test_strict_refuses_to_relax_and_names_package_version_target_and_index(links, tmp_path):
    with pytest.raises(LockError) as caught:
        resolve(linux_snapshot("1.2.3"), links, tmp_path, strict=True)
    message = str(caught.value)
    assert PROBE in message and "1.2.3" in message and "linux-x86_64" in message
    assert str(links) in message and caught.value.package == PROBE
    assert "ignore" in caught.value.hint


def test_nothing_installable_in_the_series_is_an_error(links, tmp_path):
    with pytest.raises(LockError) as caught:
        resolve(linux_snapshot("2.0.0"), links, tmp_path)
    assert "2.0.0" in str(caught.value) and "2.0.*" in str(caught.value)


def packsync_plan(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "packsync.cli", "plan", *args],
        capture_output=True, text=True, env=hermetic_env(COLUMNS="300", **env), timeout=300,
    )


EXACT_PROBE = "packsync-exact-probe"


def test_same_platform_refuses_a_version_no_index_has(tmp_path):
    """A local build (or a one-off --index-url install) of 1.2.5, which the configured
    index lacks: the workers, on the same platform, would run other code."""
    wheels = [make_wheel(tmp_path / "built", EXACT_PROBE, v) for v in ("1.2.0", "1.2.3")]
    with serve_simple_index(tmp_path / "index", wheels) as url:
        env = {"UV_INDEX": url, "HOME": str(tmp_path), "PIP_CONFIG_FILE": os.devnull}
        indexes = discover(env, prefix=str(tmp_path)).redacted()
        cache = str(tmp_path / "cache")
        for platform, name in (("linux-x86_64", "linux.json"), (MAC, "mac.json")):
            dumped = linux_snapshot("1.2.5", platform, EXACT_PROBE, indexes).to_dict()
            (tmp_path / name).write_text(json.dumps(dumped))

        refused = packsync_plan("--snapshot", str(tmp_path / "linux.json"), "--cache-dir", cache,
                                UV_INDEX=url)
        assert refused.returncode == 2, refused.stderr
        message = " ".join(refused.stderr.split())
        for text in ("critical", f"{EXACT_PROBE} 1.2.5", "same platform", url,
                     "configure the index", "relax_same_platform"):
            assert text in message, text
        assert "Traceback" not in refused.stderr

        def cluster_version(*args: str) -> str:
            result = packsync_plan("--json", "--cache-dir", cache, *args, UV_INDEX=url)
            assert result.returncode == 0, result.stderr
            rows = {row["name"]: row for row in json.loads(result.stdout)}
            return str(rows[EXACT_PROBE]["cluster_version"])

        # allowed explicitly, it is relaxed (a warning); from a Mac, relaxing is the rule
        allowed = ("--snapshot", str(tmp_path / "linux.json"), "--relax-same-platform")
        assert cluster_version(*allowed) == "1.2.3"
        assert cluster_version("--snapshot", str(tmp_path / "mac.json")) == "1.2.3"
        # and in Python: the default fail_on="critical" stops before any launch
        decided = plan(linux_snapshot("1.2.5", probe=EXACT_PROBE, indexes=indexes))
        result = lock(decided, {}, store=open_store(str(tmp_path / "store")),
                      settings=discover(env, prefix=str(tmp_path)), cache=tmp_path / "cache")
        resolved = with_resolution(decided, result.versions, result.relaxed)
        with pytest.raises(PlanError) as caught:
            enforce(resolved.problems, PlanOptions().fail_on)
        assert caught.value.package == EXACT_PROBE


@pytest.mark.parametrize("fixture", ["snapshot-macos-arm64.json", "snapshot-windows-amd64.json"])
def test_a_foreign_snapshot_is_planned_and_resolved_for_linux(fixture, tmp_path):
    result = packsync_plan("--snapshot", str(FIXTURES / fixture), "--json",
                           "--cache-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    snapshot = json.loads((FIXTURES / fixture).read_text())
    platform_only = {"appnope", "pyobjc-core", "pyobjc-framework-cocoa", "colorama", "pywin32"}
    for dist in snapshot["dists"]:
        row = rows[dist["name"]]
        assert set(row) >= {"name", "local_version", "specifier", "action", "reason"}
        if dist["name"] in platform_only:
            assert row["action"] == "ignore" and "not for linux-x86_64" in row["reason"]
            continue
        assert row["action"] == "pin"
        local, cluster = dist["version"], row["cluster_version"]
        if dist["name"] in MANDATORY:
            assert cluster == local and "exact" in row["reason"]
        else:  # exact where Linux has the file, else the same major.minor
            assert cluster.split(".")[:2] == local.split(".")[:2]
            assert cluster == local or "relaxed" in row["reason"]
    if "keyring" in rows:  # Linux needs SecretStorage, which the Mac never installed
        added = rows["SecretStorage"]
        assert added["local_version"] == "" and added["cluster_version"]
        assert rows["cryptography"]["cluster_version"]  # and its own dependencies come too


def test_plan_explains_every_decision_in_a_table(tmp_path):
    result = packsync_plan("--snapshot", str(FIXTURES / "snapshot-macos-arm64.json"),
                           "--no-resolve", "--target", "linux-aarch64")
    assert result.returncode == 0, result.stderr
    assert "plan for linux-aarch64" in result.stdout
    for text in ("appnope", "ipykernel needs it only when", "Dask needs it", "SecretStorage"):
        assert text in result.stdout
