"""Row shapes the folds produce; one Struct per projected table.

Rows hold plain values only, so they are untracked by the garbage collector (``gc=False``,
as events are): a projector keeps many thousands of them in its RowCache.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"})


class TaskRow(msgspec.Struct, kw_only=True, gc=False):
    task_id: UUID
    task_name: str
    task_args: str
    task_kwargs: str
    priority: int
    priority_level: str
    status: str
    retry_count: int
    max_retries: int
    timeout_seconds: int
    depends_on: list[UUID]
    campaign_id: UUID | None
    created_at: datetime
    scheduled_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    worker_id: UUID | None
    created_by: str | None
    correlation_id: str
    attempts: int
    progress_percent: float | None
    progress_message: str | None
    last_event_id: str
    updated_at: datetime


class ResultRow(msgspec.Struct, kw_only=True, gc=False):
    result_id: UUID
    task_id: UUID
    result_data: str | None
    error_type: str | None
    error_message: str | None
    stack_trace: str | None
    created_at: datetime


class ExecutionRow(msgspec.Struct, kw_only=True, gc=False):
    """One attempt. Fields left None are filled by a later event of the same attempt."""

    execution_id: UUID
    task_id: UUID
    worker_id: UUID | None
    attempt_number: int
    started_at: datetime | None
    completed_at: datetime | None
    duration_seconds: float | None
    status: str
    error_message: str | None


class DeadLetterRow(msgspec.Struct, kw_only=True, gc=False):
    dlq_id: UUID
    task_id: UUID
    task_data: str
    failure_reason: str
    stack_trace: str | None
    total_attempts: int
    moved_at: datetime
    requeued_at: datetime | None = None


class LogRow(msgspec.Struct, kw_only=True, gc=False):
    log_id: UUID
    task_id: UUID
    level: str
    message: str
    metadata: str
    created_at: datetime


class WorkerRow(msgspec.Struct, kw_only=True, gc=False):
    worker_id: UUID
    hostname: str | None
    status: str
    capacity: int
    current_load: int
    last_heartbeat: datetime | None
    registered_at: datetime
    stopped_at: datetime | None
    metadata: str


class AuditRow(msgspec.Struct, kw_only=True, gc=False):
    """One operator action (OperatorActed), as ``GET /api/v1/audit`` lists it."""

    audit_id: UUID
    event_id: str
    occurred_at: datetime
    actor: str
    action: str
    target_kind: str
    target: str
    reason: str
    via: str
    request_id: str | None
    detail: str


class CampaignRow(msgspec.Struct, kw_only=True, gc=False):
    campaign_id: UUID
    name: str
    status: str
    template_subject: str
    template_body: str
    template_variables: str
    total_recipients: int
    sent_count: int
    failed_count: int
    created_at: datetime
    scheduled_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    created_by: str | None
    rate_limit_per_minute: int


class RecipientRow(msgspec.Struct, kw_only=True, gc=False):
    """One recipient of a campaign: the ledger as PostgreSQL shows it.
    ``personalization`` is JSON: the recipient's ``name`` and its fields."""

    recipient_id: UUID
    campaign_id: UUID
    email: str
    status: str
    personalization: str
    sent_at: datetime | None
    task_id: UUID | None
    error_message: str | None
    bounce_reason: str | None
