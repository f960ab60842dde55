"""Reading JSON that is not what a model expects: every error names the bad field's path."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from packsync.cli import main
from packsync.errors import PacksyncError
from packsync.model import Plan, Snapshot
from packsync.serial import FormatError

FIXTURE = Path(__file__).parent.parent / "fixtures" / "snapshot-macos-arm64.json"


def saved() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE.read_text())
    return data


def damaged(change: Any) -> dict[str, Any]:
    data = saved()
    change(data)
    return data


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["dists"][3].update(version=3),
     "snapshot.dists[3].version: expected a string, found an integer"),
    (lambda d: d["dists"][0].pop("name"), "snapshot.dists[0].name: missing"),
    (lambda d: d["dists"][1]["requires"].append(None),
     "snapshot.dists[1].requires[1]: expected a string, found null"),
    (lambda d: d["dists"][2].update(requested="yes"),
     "snapshot.dists[2].requested: expected a boolean, found a string"),
    (lambda d: d["dists"][2]["source"].update(kind="svn"),
     "snapshot.dists[2].source.kind: expected one of 'index', 'editable', 'directory', "
     "'archive', 'vcs', 'conda', found 'svn'"),
    (lambda d: d["dists"][2].update(source={"kind": "editable"}),
     "snapshot.dists[2].source.path: missing"),
    (lambda d: d.update(interpreter=[]), "snapshot.interpreter: expected an object, found a list"),
    (lambda d: d["environment"].update(os_name=1),
     'snapshot.environment["os_name"]: expected a string, found an integer'),
    (lambda d: d.update(conda={"subdir": "osx-arm64"}), "snapshot.conda.prefix: missing"),
])
def test_a_bad_field_is_named_by_its_path(change: Any, message: str) -> None:
    with pytest.raises(FormatError) as caught:
        Snapshot.from_dict(damaged(change))
    assert str(caught.value) == message


@pytest.mark.parametrize(("value", "found"), [(None, "nothing"), (2, "2"), ("1", "'1'")])
def test_a_snapshot_of_another_format_is_refused(value: object, found: str) -> None:
    data = saved()
    if value is None:
        del data["format"]
    else:
        data["format"] = value
    with pytest.raises(FormatError, match=f"^snapshot.format: expected 1, found {found}$"):
        Snapshot.from_dict(data)


def test_a_plan_of_another_format_or_a_bad_action_is_refused() -> None:
    from packsync.plan.rules import plan

    data = plan(Snapshot.from_dict(saved())).to_dict()
    with pytest.raises(FormatError, match=r"^plan\.format: expected 1, found nothing$"):
        Plan.from_dict({k: v for k, v in data.items() if k != "format"})
    data["decisions"][0]["action"] = "install"
    with pytest.raises(FormatError, match=r"^plan\.decisions\[0\]\.action: expected one of "
                                          r"'pin', 'build', 'upload', 'ignore', 'conda', "
                                          r"found 'install'$"):
        Plan.from_dict(data)


def test_format_errors_are_packsync_errors_that_cross_processes() -> None:
    error = FormatError("snapshot.format: expected 1, found 2", path="mac.json", hint="rescan")
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, PacksyncError) and isinstance(copy, ValueError)
    assert (copy.path, copy.hint, str(copy)) == ("mac.json", "rescan", str(error))


def test_plan_refuses_a_snapshot_of_another_format_naming_file_and_formats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = tmp_path / "mac.json"
    old.write_text(json.dumps({k: v for k, v in saved().items() if k != "format"}))
    assert main(["plan", "--snapshot", str(old), "--no-resolve"]) == 2
    text = " ".join(capsys.readouterr().err.split())
    assert f"{old} is not a snapshot of format 1" in text
    assert "snapshot.format: expected 1, found nothing" in text
    assert "packsync scan --json" in text


def test_plan_names_the_bad_field_of_a_saved_snapshot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "win.json"
    bad.write_text(json.dumps(damaged(lambda d: d["dists"][3].pop("version"))))
    assert main(["plan", "--snapshot", str(bad), "--no-resolve"]) == 2
    text = " ".join(capsys.readouterr().err.split())
    assert str(bad) in text and "snapshot.dists[3].version: missing" in text


def test_scan_json_is_a_snapshot_of_the_current_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["format"] == 1
    assert Snapshot.from_dict(data).to_dict() == data
