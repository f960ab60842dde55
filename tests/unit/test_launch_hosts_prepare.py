"""The pure decisions of host preparation (packsync.launch.hosts.prepare): which interpreter
to try, which Python differences stop a launch, and how many host failures read as one."""

from __future__ import annotations

import logging
import platform
from typing import Any, cast

import pytest

from packsync.errors import LaunchError, MaterializeError
from packsync.launch.hosts.prepare import (
    _builder,
    _check_version,
    _combined,
    _Probed,
    interpreter_candidates,
)
from packsync.launch.hosts.spec import HostSpec
from packsync.materialize.artifacts import builder_platform
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


def probed(name: str, system: str, libc: str) -> _Probed:
    probe = cast(Any, {"platform": system, "libc": libc})
    return _Probed(spec=HostSpec(address=name), connection=cast(Any, None), probe=probe)


def test_auto_builds_here_for_hosts_that_run_this_machines_builds() -> None:
    here = platform.libc_ver()[1] or "2.0"
    hosts = [probed("a", builder_platform(), f"glibc {here}"),
             probed("b", builder_platform(), "glibc 99.0"), probed("c", builder_platform(), "")]
    assert _builder(hosts, "auto") is None
    assert _builder(hosts, "first-host") is hosts[0]
    assert _builder(hosts, "b") is hosts[1]


def test_auto_lets_the_host_with_the_oldest_glibc_build_for_another_platform() -> None:
    hosts = [probed("new", "Linux-riscv64", "glibc 2.39"), probed("old", "Linux-riscv64",
                                                                   "glibc 2.28")]
    assert _builder(hosts, "auto") is hosts[1]
    assert _builder(hosts, "client") is None


@pytest.mark.skipif(not platform.libc_ver()[1], reason="this machine's glibc is unknown")
def test_auto_lets_a_host_build_when_its_glibc_is_older_than_this_machines() -> None:
    hosts = [probed("same", builder_platform(), f"glibc {platform.libc_ver()[1]}"),
             probed("older", builder_platform(), "glibc 2.1")]
    assert _builder(hosts, "auto") is hosts[1]


def test_only_this_machine_builds_a_conda_environment() -> None:
    older = [probed("a", builder_platform(), "glibc 2.1")]  # conda brings its own libraries
    assert _builder(older, "auto", conda=True) is None
    assert _builder(older, "client", conda=True) is None
    with pytest.raises(LaunchError) as named:
        _builder(older, "first-host", conda=True)
    assert "builder='first-host' would have a host build it" in named.value.message
    other = [*older, probed("arm", "Linux-riscv64", "glibc 2.39")]
    with pytest.raises(LaunchError) as foreign:
        _builder(other, "auto", conda=True)
    assert "conda packages, which only this machine installs" in foreign.value.message
    assert "arm run Linux-riscv64" in foreign.value.message and foreign.value.host == "arm"
    assert "login node" in foreign.value.hint


def test_a_builder_naming_no_host_is_refused_with_the_choices() -> None:
    with pytest.raises(LaunchError) as caught:
        _builder([probed("a", builder_platform(), "")], "elsewhere")
    assert "builder='elsewhere' names none of the hosts" in caught.value.message
    assert "'auto'" in caught.value.hint
