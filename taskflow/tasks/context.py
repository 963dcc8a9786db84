"""What task code can ask of the run it is in: log lines and progress.

    from taskflow.tasks import current_task

    @task
    def import_rows(path: str) -> int:
        run = current_task()
        run.log("INFO", "starting", path=path)
        run.progress(50, "half way")

Each call becomes an event (TaskLogged, TaskProgressed) recorded by the worker; logs land
in ``task_logs`` and progress on the task. Outside a task run the calls are refused.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

from taskflow.errors import TaskFlowError

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class NotInATask(TaskFlowError):
    """Raised when ``current_task()`` is called outside a task run."""


@dataclass(frozen=True)
class Note:
    """One thing task code reported: a log line or a progress step."""

    kind: Literal["log", "progress"]
    level: LogLevel = "INFO"
    message: str = ""
    percent: float = 0.0
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class TaskRun:
    task_id: str
    attempt: int
    _emit: Callable[[Note], None]
    # Retries already used and allowed: task code that must leave a record of its final
    # failure (a campaign recipient's) knows its last try (``last_try``).
    retry_count: int = 0
    max_retries: int = 0

    @property
    def last_try(self) -> bool:
        """A failure of this run is final: no retry is left."""
        return self.retry_count >= self.max_retries

    def log(self, level: LogLevel, message: str, **metadata: Any) -> None:
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError(f"level must be DEBUG, INFO, WARNING or ERROR, not {level!r}")
        self._emit(Note(kind="log", level=level, message=str(message), metadata=metadata or None))

    def report(self, note: Note) -> None:
        """Pass on a note as it is (used to relay notes from a child process)."""
        self._emit(note)

    def progress(self, percent: float, message: str = "") -> None:
        if not 0 <= percent <= 100:
            raise ValueError(f"percent must be within 0..100, not {percent}")
        self._emit(Note(kind="progress", percent=float(percent), message=str(message)))


_current: ContextVar[TaskRun | None] = ContextVar("taskflow_task_run", default=None)


def current_task() -> TaskRun:
    run = _current.get()
    if run is None:
        raise NotInATask("current_task() is only available inside a running task")
    return run


def enter_task(run: TaskRun) -> object:
    """Set the run for the calling context; returns a token for ``leave_task``."""
    return _current.set(run)


def leave_task(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]
