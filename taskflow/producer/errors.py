"""What a producer's handle raises: the task's own ending, typed, and the waits that end
without one."""

from __future__ import annotations

from taskflow.errors import TaskFlowError


class TaskError(TaskFlowError):
    """The task ended without a result. ``task_id`` names it, ``event`` is the event that
    ended it (a ``TaskFailed``, ``TaskTimedOut``, ``TaskCancelled``, ...)."""

    def __init__(self, task_id: str, message: str) -> None:
        super().__init__(f"task {task_id}: {message}")
        self.task_id = task_id


class TaskFailedError(TaskError):
    """The task's code raised, for good (its retries, if any, are spent). ``error_type``
    is the exception's class name, ``error`` its message, ``remote_traceback`` the
    worker's traceback."""

    def __init__(self, task_id: str, error_type: str, error: str, remote_traceback: str) -> None:
        super().__init__(task_id, f"{error_type}: {error}")
        self.error_type = error_type
        self.error = error
        self.remote_traceback = remote_traceback


class TaskTimedOutError(TaskError):
    """The task ran past its ``timeout_seconds`` and was stopped."""

    def __init__(self, task_id: str, timeout_seconds: float) -> None:
        super().__init__(task_id, f"timed out after {timeout_seconds:g} s")
        self.timeout_seconds = timeout_seconds


class TaskCancelledError(TaskError):
    """The task was cancelled (by a client, or because a parent it depends on failed)."""

    def __init__(self, task_id: str, reason: str) -> None:
        super().__init__(task_id, f"cancelled ({reason})" if reason else "cancelled")
        self.reason = reason


class TaskDeadLetteredError(TaskError):
    """The task was dead-lettered: its runs kept killing their workers (poison)."""

    def __init__(self, task_id: str, reason: str) -> None:
        super().__init__(task_id, f"dead-lettered ({reason})")
        self.reason = reason


class TaskRejectedError(TaskError):
    """The task's dispatch entry could not be read by the worker (see DispatchRejected)."""


class ResultTimeout(TaskFlowError, TimeoutError):
    """``result(timeout=...)`` ran out before the task ended; the task goes on."""


class TaskNotFound(TaskFlowError, LookupError):
    """Redis knows no task by this id: never submitted, or its live state has expired
    (``TASKFLOW_IDEMPOTENCY_TTL_SECONDS`` after it was due). Its history stays in the
    archive; ask the gateway (``GET /api/v1/tasks/{id}``)."""


class OutcomeGone(TaskFlowError, LookupError):
    """The task ended, but the event with its outcome is no longer in Redis (trimmed to
    the archive); ask the gateway (``GET /api/v1/tasks/{id}``)."""
