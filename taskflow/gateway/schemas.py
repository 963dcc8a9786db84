"""Request and response bodies of the task routes.

Request bodies forbid unknown fields, so a misspelled field is a 422, not a silent default.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

from taskflow.submission.schema import TaskSubmission

TaskStatus = Literal["PENDING", "SCHEDULED", "WAITING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"]
TASK_STATUSES: tuple[str, ...] = TaskStatus.__args__  # type: ignore[attr-defined]
JSON_NULL = msgspec.Raw(b"null")


class TaskAccepted(msgspec.Struct, kw_only=True):
    task_id: UUID
    status: TaskStatus
    event_id: str


class TaskBatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    tasks: Annotated[list[TaskSubmission], Meta(min_length=1, max_length=1000)]


class TaskBatchAccepted(msgspec.Struct, kw_only=True):
    # In request order.
    items: list[TaskAccepted]


class TaskError(msgspec.Struct, kw_only=True):
    type: str | None
    message: str | None
    traceback: str | None


class Progress(msgspec.Struct, kw_only=True):
    percent: float
    message: str | None


class LogLine(msgspec.Struct, kw_only=True):
    level: str
    message: str
    metadata: msgspec.Raw
    created_at: datetime


class LogPage(msgspec.Struct, kw_only=True):
    items: list[LogLine]


class TaskView(msgspec.Struct, kw_only=True):
    task_id: UUID
    task_name: str
    args: msgspec.Raw
    kwargs: msgspec.Raw
    priority: str
    status: str
    retry_count: int
    max_retries: int
    timeout_seconds: int
    attempts: int
    created_at: datetime
    scheduled_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    worker_id: UUID | None
    created_by: str | None
    correlation_id: str
    campaign_id: UUID | None
    depends_on: list[UUID]
    last_event_id: str
    progress: Progress | None = None
    # null until the task succeeded; JSON null rather than None (see gateway/openapi.py).
    result: msgspec.Raw = JSON_NULL
    error: TaskError | None = None


class TaskPage(msgspec.Struct, kw_only=True):
    items: list[TaskView]
    next_cursor: str | None


class Readiness(msgspec.Struct, kw_only=True):
    status: Literal["ready", "not_ready"]
    redis: str
    postgres: str
    migrations: str
