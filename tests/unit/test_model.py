"""Models survive a trip through JSON, errors survive a trip through pickle."""

from __future__ import annotations

import json
import pickle

from packsync.errors import BuildError, PacksyncError
from packsync.model import IndexConfig, InstalledDist, Interpreter, Plan, Snapshot
from packsync.plan.rules import MANDATORY, plan
from packsync.sources import ArchiveSource, DirectorySource, EditableSource, VcsSource


def sample() -> Snapshot:
    sources = [EditableSource(path="/e"), DirectorySource(path="/d"),
               ArchiveSource(url="file:///a.whl", sha256="00" * 32),
               VcsSource(vcs="git", url="https://h/r", commit="c0ffee", requested_revision="main")]
    dists = [InstalledDist(name=n, version="1.0", installer="uv", requested=True,
                           requires=("x>=1",)) for n in MANDATORY]
    dists += [InstalledDist(name=f"p{i}", version="2.0", source=s) for i, s in enumerate(sources)]
    return Snapshot(
        interpreter=Interpreter(implementation="cpython", version="3.11.7",
                                platform="linux-x86_64", libc="manylinux_2_36", executable="/py"),
        environment={"sys_platform": "linux"},
        prefix="/env",
        dists=tuple(dists),
        code_paths=("/work",),
        indexes=IndexConfig(index_url="https://pypi.org/simple", extra_index_urls=("https://x",),
                            origins={"https://x": "$PIP_EXTRA_INDEX_URL"}),
    )


def test_snapshot_round_trips_through_json():
    snap = sample()
    assert Snapshot.from_dict(json.loads(json.dumps(snap.to_dict()))) == snap


def test_plan_round_trips_through_json():
    p = plan(sample())
    assert Plan.from_dict(json.loads(json.dumps(p.to_dict()))) == p


def test_errors_keep_their_fields_through_pickle():
    error = BuildError("boom", package="mine", path="/src", log_tail="line", hint="fix it")
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, BuildError) and isinstance(copy, PacksyncError)
    assert (copy.package, copy.path, copy.hint, str(copy)) == ("mine", "/src", "fix it",
                                                               str(error))
    assert "line" in str(copy) and "hint: fix it" in str(copy)
