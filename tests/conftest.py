"""The session's tally of replayed attacks and fault scenarios, printed at its end.

``@pytest.mark.attack("finding")`` marks a test that replays a security finding against
the real components and asserts the attack fails: each such test run counts as one attack
of that finding, and a test that fails is an attack that succeeded.
``@pytest.mark.fault("suite")`` marks a fault test; it counts its scenarios itself through
the ``scenarios`` fixture (a counter), since one test replays many.
Both are printed in the terminal summary of every run that ran such a test, `-q` or not.
"""

from __future__ import annotations

import collections
from collections.abc import Generator
from dataclasses import dataclass, field

import pytest


@dataclass(kw_only=True, slots=True)
class Tally:
    """Per finding: attacks run, attacks that worked (failed tests), attacks not run; per
    name: fault scenarios, and fault tests that failed."""

    replayed: collections.Counter[str] = field(default_factory=collections.Counter)
    succeeded: collections.Counter[str] = field(default_factory=collections.Counter)
    skipped: collections.Counter[str] = field(default_factory=collections.Counter)
    scenarios: collections.Counter[str] = field(default_factory=collections.Counter)
    faults_failed: collections.Counter[str] = field(default_factory=collections.Counter)


TALLY = pytest.StashKey[Tally]()
OUTCOME = pytest.StashKey[str]()


def _tally(config: pytest.Config) -> Tally:
    if TALLY not in config.stash:
        config.stash[TALLY] = Tally()
    return config.stash[TALLY]


def _marked(item: pytest.Item, name: str) -> str | None:
    marker = item.get_closest_marker(name)
    if marker is None:
        return None
    if len(marker.args) != 1 or not isinstance(marker.args[0], str):
        raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.{name} takes one name, the "
                                "finding or suite it replays")
    return str(marker.args[0])


@pytest.fixture
def scenarios(request: pytest.FixtureRequest) -> collections.Counter[str]:
    """Scenarios of a fault test, counted by name into the session's tally."""
    return _tally(request.config).scenarios


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Each marked test counted once, after its teardown: failed in any phase, skipped,
    or passed."""
    report = yield
    outcome = item.stash.get(OUTCOME, "passed")
    if report.failed:
        outcome = "failed"
    elif report.skipped and outcome == "passed":
        outcome = "skipped"
    item.stash[OUTCOME] = outcome
    if report.when == "teardown":
        _count(item, outcome)
    return report


def _count(item: pytest.Item, outcome: str) -> None:
    tally = _tally(item.config)
    finding = _marked(item, "attack")
    if finding is not None:
        if outcome == "skipped":
            tally.skipped[finding] += 1
        else:
            tally.replayed[finding] += 1
            tally.succeeded[finding] += outcome == "failed"
    suite = _marked(item, "fault")
    if suite is not None and outcome == "failed":
        tally.faults_failed[suite] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    tally = config.stash.get(TALLY, None)
    if tally is None:
        return
    findings = sorted(set(tally.replayed) | set(tally.skipped))
    if findings:
        width = max(len("finding"), *(len(f) for f in findings))
        terminalreporter.section("attacks")
        terminalreporter.write_line(f"{'finding':<{width}}  replayed  succeeded  not run")
        for finding in findings:
            terminalreporter.write_line(
                f"{finding:<{width}}  {tally.replayed[finding]:>8}  "
                f"{tally.succeeded[finding]:>9}  {tally.skipped[finding]:>7}")
        replayed, succeeded = tally.replayed.total(), tally.succeeded.total()
        terminalreporter.write_line(f"attacks replayed: {replayed}, succeeded: {succeeded}",
                                    red=succeeded > 0, green=succeeded == 0, bold=True)
    if tally.scenarios or tally.faults_failed:
        terminalreporter.section("faults")
        terminalreporter.write_line("fault scenarios: " + ", ".join(
            f"{k}: {v}" for k, v in sorted(tally.scenarios.items())))
        if tally.faults_failed:
            terminalreporter.write_line("fault tests failed: " + ", ".join(
                f"{k}: {v}" for k, v in sorted(tally.faults_failed.items())), red=True)
