"""Submitting and following tasks from Python, straight to Redis (``Producer``,
``TaskHandle``), and the errors a handle raises. ``@task`` functions submit through it:
``await add.submit(2, 3)`` then ``await handle.result()``."""

from taskflow.producer.errors import (
    OutcomeGone,
    ResultTimeout,
    TaskCancelledError,
    TaskDeadLetteredError,
    TaskError,
    TaskFailedError,
    TaskNotFound,
    TaskRejectedError,
    TaskTimedOutError,
)
from taskflow.producer.handle import TaskHandle
from taskflow.producer.producer import Producer

__all__ = [
    "OutcomeGone",
    "Producer",
    "ResultTimeout",
    "TaskCancelledError",
    "TaskDeadLetteredError",
    "TaskError",
    "TaskFailedError",
    "TaskHandle",
    "TaskNotFound",
    "TaskRejectedError",
    "TaskTimedOutError",
]
