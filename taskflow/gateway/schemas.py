"""Request and response bodies of the task routes.

Request bodies forbid unknown fields, so a misspelled field is a 422, not a silent default.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

from taskflow.events import Priority

TaskStatus = Literal["PENDING", "SCHEDULED", "WAITING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"]
TASK_STATUSES: tuple[str, ...] = TaskStatus.__args__  # type: ignore[attr-defined]
JSON_NULL = msgspec.Raw(b"null")


class TaskSubmission(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    task_name: Annotated[str, Meta(min_length=1, max_length=255)]
    args: list[Any] = msgspec.field(default_factory=list)
    kwargs: dict[str, Any] = msgspec.field(default_factory=dict)
    # A level name, or the seed's integer 1-10 (higher = more urgent), mapped on intake.
    priority: Priority | Annotated[int, Meta(ge=1, le=10)] = "medium"
    max_retries: Annotated[int, Meta(ge=0, le=100)] = 5
    timeout_seconds: Annotated[int, Meta(ge=1, le=86_400)] = 300
    # With a timezone; a time in the past dispatches at once.
    scheduled_at: Annotated[datetime, Meta(tz=True)] | None = None
    # A recurring schedule instead of one task: each tick submits one (see /api/v1/schedules).
    cron: Annotated[str, Meta(min_length=1, max_length=255)] | None = None
    # Runs only after every parent COMPLETED; a parent that fails for good cancels it.
    depends_on: Annotated[list[UUID], Meta(max_length=100)] = msgspec.field(default_factory=list)
    task_id: UUID | None = None


class TaskAccepted(msgspec.Struct, kw_only=True):
    task_id: UUID
    status: TaskStatus
    event_id: str


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
