"""Worker reports against a lock: every difference found, severities as fail_on expects."""

from __future__ import annotations

import importlib.metadata
import json
import logging

import pytest

from packsync.errors import LaunchError
from packsync.launch.verify import compare, compare_raw, enforce, read_report
from packsync.launch.worker_report import environment_report, report_json
from packsync.lock.lockfile import LocalWheel, Lock

LOCK = Lock(
    text="", digest="0" * 64, python="3.11.7",
    local_wheels=(LocalWheel(filename="mylib-0.1.0-py3-none-any.whl", sha256="a" * 64),),
    versions={"dask": "2026.8.0", "httpx": "0.28.1", "mylib": "0.1.0"},
)


def report(**changes: object) -> dict:
    base = {
        "format": 1, "executable": "/env/bin/python", "prefix": "/env", "hostname": "node1",
        "python": "3.11.7",
        "versions": {"dask": "2026.8.0", "httpx": "0.28.1", "mylib": "0.1.0"},
        "local": {"mylib": {"wheel": "mylib-0.1.0-py3-none-any.whl", "altered": []}},
    }
    base.update(changes)
    return base


def test_identical_environment_has_no_difference() -> None:
    assert compare(LOCK, report(), worker="w1", host="h1") == []


def test_every_difference_is_listed_with_both_versions_and_the_host() -> None:
    found = compare(LOCK, report(
        python="3.11.2",
        versions={"dask": "2024.1.0", "httpx": "0.27.0", "mylib": "0.1.0", "extra": "1"},
        local={"mylib": {"wheel": "mylib-0.1.0-py3-none-any.whl", "altered": ["mylib/x.py"]}},
    ), worker="tcp://w1", host="node2")
    by_name = {d.package: d for d in found}
    assert by_name["dask"].severity == "critical"  # a mandatory package
    assert by_name["httpx"].severity == "warning"
    assert by_name["httpx"].describe() == (
        "httpx: lock 0.28.1, worker tcp://w1 on node2 has 0.27.0")
    assert by_name["python"].severity == "notice"  # a patch release
    assert by_name["extra"].severity == "notice"
    assert "mylib/x.py" in by_name["mylib"].actual and by_name["mylib"].severity == "critical"


def test_missing_package_and_other_minor_python_are_found() -> None:
    found = compare(LOCK, report(python="3.10.4", versions={"dask": "2026.8.0", "mylib": "0.1.0"}),
                    worker="w", host="h")
    assert {(d.package, d.actual, d.severity) for d in found} == {
        ("python", "3.10.4", "critical"), ("httpx", "nothing installed", "warning")}


def test_fail_on_decides_error_or_warning(caplog: pytest.LogCaptureFixture) -> None:
    found = compare(LOCK, report(versions={"dask": "2026.8.0", "httpx": "0.1", "mylib": "0.1.0"}),
                    worker="w", host="node2")
    with caplog.at_level(logging.WARNING):
        assert enforce(found, "critical") == found
    assert "httpx: lock 0.28.1" in caplog.text
    with pytest.raises(LaunchError) as error:
        enforce(found, "warning")
    assert error.value.host == "node2" and error.value.package == "httpx"
    assert "0.28.1" in str(error.value) and "0.1" in str(error.value)


def test_report_of_this_process_sees_what_imports_see() -> None:
    mine = environment_report()
    assert mine["versions"]["packaging"] == importlib.metadata.version("packaging")
    assert mine["python"].count(".") == 2


def test_report_of_this_process_is_read_back_as_sent() -> None:
    text = report_json()
    assert read_report(text) == json.loads(text) and read_report(text)["format"] == 1


def test_an_identical_report_sent_as_json_has_no_difference() -> None:
    assert compare_raw(LOCK, json.dumps(report()), worker="w", host="h") == []


@pytest.mark.parametrize(("raw", "actual"), [
    (json.dumps(report(format=2)), "report.format: expected 1, found 2"),
    (json.dumps({k: v for k, v in report().items() if k != "format"}),
     "report.format: missing"),
    (json.dumps(report(local={"mylib": {"wheel": "mylib-0.1.0-py3-none-any.whl"}})),
     'report.local["mylib"].altered: missing'),
    (json.dumps(report(versions={"dask": 2026})),
     'report.versions["dask"]: expected a string, found an integer'),
    ("{not json", "report: not JSON"),
    (None, "report: expected JSON text, found NoneType"),
])
def test_a_report_not_of_the_format_is_one_critical_difference(raw: object, actual: str) -> None:
    [found] = compare_raw(LOCK, raw, worker="tcp://w1", host="node2")
    assert (found.package, found.expected, found.severity) == (
        "(report)", "a report of format 1", "critical")
    assert found.actual.startswith(actual)
