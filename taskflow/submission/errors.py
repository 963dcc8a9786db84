"""Why a submission is refused."""

from __future__ import annotations

from typing import Literal

from taskflow.errors import TaskFlowError


class SubmissionError(TaskFlowError):
    """Root of the reasons a submission is refused."""


class InvalidSubmission(SubmissionError, ValueError):
    """A field that cannot be accepted: ``field`` names it (``kwargs.seconds``,
    ``depends_on``, ``Idempotency-Key``), ``message`` says why. The gateway answers 422."""

    def __init__(self, field: str, message: str, source: Literal["body", "header"] = "body") -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.source: Literal["body", "header"] = source


class IdempotencyConflict(InvalidSubmission):
    """An idempotency key reused with different arguments or options."""

    def __init__(self) -> None:
        super().__init__("Idempotency-Key", "was already used with a different request body", source="header")


class TaskIdTaken(SubmissionError):
    """A client-chosen task id that names another task. The gateway answers 409."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"task_id {task_id} is already taken")
        self.task_id = task_id
