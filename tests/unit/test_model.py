"""Models survive a trip through JSON exactly, errors survive a trip through pickle."""

from __future__ import annotations

import json
import pickle
from dataclasses import replace
from pathlib import Path

import pytest

from packsync.conda.model import CondaDecision, CondaEnvironment, CondaPackage, CondaPlan
from packsync.errors import BuildError, PacksyncError
from packsync.model import (
    Artifact,
    IndexConfig,
    InstalledDist,
    Interpreter,
    Plan,
    PlanOptions,
    Relaxation,
    Snapshot,
)
from packsync.plan.rules import MANDATORY, plan
from packsync.sources import (
    ArchiveSource,
    CondaSource,
    DirectorySource,
    EditableSource,
    VcsSource,
)

FIXTURES = Path(__file__).parent.parent / "fixtures"
SAVED = sorted(FIXTURES.glob("snapshot-*.json"))


def sample() -> Snapshot:
    sources = [EditableSource(path="/e", commit="abc"), DirectorySource(path="/d"),
               ArchiveSource(url="file:///a.whl", sha256="00" * 32),
               VcsSource(vcs="git", url="https://h/r", commit="c0ffee", requested_revision="main",
                         subdirectory="sub"),
               CondaSource(package="toolz", channel="https://conda.anaconda.org/conda-forge")]
    dists = [InstalledDist(name=n, version="1.0", installer="uv", requested=True,
                           requires=("x>=1",)) for n in MANDATORY]
    dists += [InstalledDist(name=f"p{i}", version="2.0", source=s, location="/site",
                            problems=("odd",)) for i, s in enumerate(sources)]
    return Snapshot(
        interpreter=Interpreter(implementation="cpython", version="3.11.7",
                                platform="linux-x86_64", libc="manylinux_2_36", executable="/py"),
        environment={"sys_platform": "linux"},
        prefix="/env",
        dists=tuple(dists),
        code_paths=("/work",),
        indexes=IndexConfig(index_url="https://pypi.org/simple", extra_index_urls=("https://x",),
                            find_links=("/wheels",),
                            origins={"https://x": "$PIP_EXTRA_INDEX_URL"}),
        notes=("left out a .pth",),
        conda=CondaEnvironment(prefix="/env", subdir="linux-64", channels=("conda-forge",),
                               packages=(CondaPackage(name="toolz", version="1.0", build="py_0",
                                                      build_number=3, depends=("python",),
                                                      python_dists=("toolz",)),)),
    )


def snapshots() -> list[Snapshot]:
    return [sample()] + [Snapshot.from_dict(json.loads(path.read_text())) for path in SAVED]


def plans() -> list[Plan]:
    """Every snapshot planned for every target, loose and strict, then as resolved."""
    found = []
    for snap in snapshots():
        for target in ("linux-x86_64", "linux-aarch64"):
            for options in (PlanOptions(), PlanOptions.create(strict=True, fail_on="any")):
                decided = plan(snap, target, options)
                resolved = replace(decided, decisions=tuple(
                    replace(d, cluster_version=d.local_version or "9.9") for d in decided.decisions
                ))
                found += [decided, resolved]
    conda = CondaPlan(subdir="linux-64", channels=("conda-forge",), python="3.11.7",
                      decisions=(CondaDecision(name="toolz", local_version="1.0", build="py_0",
                                               action="pin", spec="toolz ==1.0 py_0",
                                               reason="exact", cluster_version="1.0"),))
    return [*found, replace(found[0], conda=conda)]


def through_json(data: dict[str, object]) -> object:
    return json.loads(json.dumps(data))


def test_saved_snapshots_are_read_and_written_back_to_the_same_json() -> None:
    assert len(SAVED) == 2
    for path in SAVED:
        data = json.loads(path.read_text())
        assert data["format"] == 1
        assert Snapshot.from_dict(data).to_dict() == data


@pytest.mark.parametrize("snap", snapshots(), ids=lambda s: s.interpreter.platform)
def test_every_snapshot_round_trips_exactly(snap: Snapshot) -> None:
    assert Snapshot.from_dict(snap.to_dict()) == snap
    assert Snapshot.from_dict(through_json(snap.to_dict())) == snap


def test_every_plan_round_trips_exactly() -> None:
    checked = plans()
    assert any(p.problems for p in checked) and any(p.conda for p in checked)
    for decided in checked:
        assert Plan.from_dict(decided.to_dict()) == decided
        assert Plan.from_dict(through_json(decided.to_dict())) == decided


def test_snapshot_and_plan_json_carry_their_format_first() -> None:
    snap = sample()
    assert list(snap.to_dict())[0] == "format" and snap.to_dict()["format"] == 1
    assert list(plan(snap).to_dict())[0] == "format"


def test_json_keys_are_the_field_names_and_sources_are_tagged() -> None:
    data = sample().to_dict()
    assert set(data["indexes"]) == {"index_url", "extra_index_urls", "find_links", "origins"}
    vcs = data["dists"][-2]["source"]
    assert vcs == {"kind": "vcs", "vcs": "git", "url": "https://h/r", "commit": "c0ffee",
                   "requested_revision": "main", "subdirectory": "sub"}
    assert data["conda"]["packages"][0]["build_number"] == 3


def test_models_kept_in_the_lock_use_kebab_case_keys() -> None:
    relaxed = Relaxation(name="a", local_version="1.2.3", specifier="==1.2.*", version="1.2.1",
                         reason="no wheel")
    assert relaxed.to_dict()["local-version"] == "1.2.3" and "local_version" not in relaxed.to_dict()
    assert Relaxation.from_dict(relaxed.to_dict()) == relaxed


def test_artifact_records_keep_their_keys() -> None:
    """Wheel records written before stay readable: their keys did not change."""
    record = {"name": "mine", "version": "0.1", "filename": "mine-0.1-py3-none-any.whl",
              "sha256": "a" * 64}
    assert Artifact.from_dict(record).to_dict() == record


def test_errors_keep_their_fields_through_pickle():
    error = BuildError("boom", package="mine", path="/src", log_tail="line", hint="fix it")
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, BuildError) and isinstance(copy, PacksyncError)
    assert (copy.package, copy.path, copy.hint, str(copy)) == ("mine", "/src", "fix it",
                                                               str(error))
    assert "line" in str(copy) and "hint: fix it" in str(copy)
