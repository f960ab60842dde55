"""The pure decisions of host preparation (packsync.launch.hosts.prepare): which interpreter
to try, which Python differences stop a launch, and how many host failures read as one."""

from __future__ import annotations

import logging

import pytest

from packsync.errors import LaunchError, MaterializeError
from packsync.launch.hosts.prepare import _check_version, _combined, interpreter_candidates
from packsync.launch.hosts.spec import HostSpec
from tests.support.builds import Steps

HOST = HostSpec(address="10.0.0.7", username="ops")


def test_a_named_python_is_the_only_candidate_else_the_locks_release_then_python3() -> None:
    assert interpreter_candidates(HostSpec(address="a", python="/opt/py"), "3.11.7") == ["/opt/py"]
    assert interpreter_candidates(HostSpec(address="a"), "3.11.7") == ["python3.11", "python3"]


def test_another_minor_release_stops_the_launch_naming_host_versions_and_python() -> None:
    with pytest.raises(LaunchError) as caught:
        _check_version(HOST, "3.12.1", "3.11.7", "/usr/bin/python3", Steps())
    error = caught.value
    assert error.message == ("host ops@10.0.0.7: /usr/bin/python3 is Python 3.12.1, but the "
                             "environment needs Python 3.11.7")
    assert error.host == "ops@10.0.0.7" and error.path == "/usr/bin/python3"
    assert "install Python 3.11 on ops@10.0.0.7" in error.hint and "python=" in error.hint


def test_another_patch_release_only_warns(caplog: pytest.LogCaptureFixture) -> None:
    steps = Steps()
    with caplog.at_level(logging.WARNING, logger="packsync.launch.hosts.prepare"):
        _check_version(HOST, "3.11.2", "3.11.7", "/usr/bin/python3", steps)
        _check_version(HOST, "3.11.7", "3.11.7", "/usr/bin/python3", steps)
    assert [r.getMessage() for r in caplog.records] == [
        "host ops@10.0.0.7: Python 3.11.2 for an environment locked on Python 3.11.7"]
    assert steps.messages == ["ops@10.0.0.7: Python 3.11.2 (client 3.11.7)"]


def test_several_host_failures_are_one_error_naming_every_host() -> None:
    first = MaterializeError("disk full on a", host="a", log_tail="no space", hint="free space")
    second = LaunchError("cannot reach host b", host="b", hint="free space")
    combined = _combined([first, second])
    assert isinstance(combined, LaunchError)
    assert combined.message == ("2 hosts could not be prepared:\n  disk full on a\n"
                                "  cannot reach host b")
    assert combined.host == "a, b" and combined.hint == "free space"
    assert combined.log_tail == "[a]\nno space"
    assert _combined([first]) is first
    unexpected = RuntimeError("a bug")
    assert _combined([first, unexpected]) is unexpected  # a bug is never hidden in a summary
