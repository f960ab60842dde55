"""Stages report their end even when they fail, so a progress display never hangs."""

from __future__ import annotations

import pytest

from packsync.progress import StageClock, stage


class Recorder:
    def __init__(self):
        self.events = []

    def stage_started(self, name, detail):
        self.events.append(("start", name))

    def stage_finished(self, name, seconds, detail):
        self.events.append(("end", name, detail))

    def step(self, name, message):
        self.events.append(("step", name, message))


def test_stage_times_and_reports_success_and_failure():
    recorder = Recorder()
    clock = StageClock(recorder)
    with stage(clock, "build") as current:
        clock.step("build", "building x")
        current.detail = "1 built"
    with pytest.raises(ValueError), stage(clock, "lock"):
        raise ValueError("boom")
    assert recorder.events == [("start", "build"), ("step", "build", "building x"),
                               ("end", "build", "1 built"), ("start", "lock"),
                               ("end", "lock", "failed")]
    assert set(clock.seconds) == {"build", "lock"}
