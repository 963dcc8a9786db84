"""What every embedded server shares: the handle to a running one, the error when one
cannot start, how often a starting one is polled, its log tail for error messages, and
a stop that runs once.

The servers also serve as the test fallback when no external services are configured,
so both start from scratch in a plain data directory and keep their data there
between runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from taskflow.errors import TaskFlowError

POLL_INTERVAL = 0.05
_LOG_TAIL_LINES = 25


class EmbeddedServerError(TaskFlowError):
    """An embedded server could not be started."""


@dataclass(frozen=True)
class RunningServer:
    url: str
    stop: Callable[[], None]


def run_once(action: Callable[[], None]) -> Callable[[], None]:
    """Wrap ``action`` so that repeated calls are no-ops once it has succeeded."""
    lock = threading.Lock()
    done = False

    def run() -> None:
        nonlocal done
        with lock:
            if not done:
                action()
                done = True

    return run


def log_tail(log_path: Path) -> str:
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {log_path})"
    tail = "\n".join(lines[-_LOG_TAIL_LINES:])
    return f"last lines of {log_path}:\n{tail}"
