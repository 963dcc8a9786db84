"""Progress bars on stderr for long commands (replay, rebuild, verify)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable


class progress_bar:
    """A progress bar on stderr with events/s and the time left, as a context manager
    handing out its ``advance(done)``; nothing when off."""

    def __init__(self, label: str, total: int, enabled: bool | None) -> None:
        self.label = label
        self.total = total
        self.enabled = sys.stderr.isatty() if enabled is None else enabled

    def __enter__(self) -> Callable[[int], None] | None:
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn(self.label),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        task = self._progress.add_task(self.label, total=max(self.total, 1), rate="")
        started = time.perf_counter()
        self._progress.start()

        def advance(done: int) -> None:
            rate = done / max(time.perf_counter() - started, 1e-9)
            self._progress.update(task, completed=done, rate=f"{rate:>9,.0f} events/s")

        return advance

    def __exit__(self, *_: object) -> None:
        if self.enabled:
            self._progress.stop()
