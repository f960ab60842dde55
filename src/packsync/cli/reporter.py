"""Progress of long steps on the terminal, with rich."""

from __future__ import annotations

from typing import Any

from rich.console import Console


class RichReporter:
    """Shows each stage with a spinner while it runs and a line with its time when done."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._status: Any = None

    def stage_started(self, stage: str, detail: str) -> None:
        self._status = self.console.status(f"[bold]{stage}[/] {detail}")
        self._status.start()

    def stage_finished(self, stage: str, seconds: float, detail: str) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
        self.console.print(f"[green]✓[/] [bold]{stage:<12}[/] {seconds:7.3f} s  {detail}")

    def step(self, stage: str, message: str) -> None:
        if self._status is not None:
            self._status.update(f"[bold]{stage}[/] {message}")
