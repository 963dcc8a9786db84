"""The task projection as pure folds: ``(state, event) -> state``, no I/O.

Ids of child rows are derived from event data (uuid5), and timestamps come from the
events, so a live build, a build after crashes and a replay give identical rows
(ARCHITECTURE invariants 4 and 10).
"""

from __future__ import annotations

from typing import assert_never

import msgspec

from taskflow.events import (
    TaskCancelled,
    TaskCancelRequested,
    TaskDeadLettered,
    TaskFailed,
    TaskLogged,
    TaskProgressed,
    TaskQueued,
    TaskReclaimed,
    TaskStarted,
    TaskSubmitted,
    TaskSucceeded,
    TaskTimedOut,
)
from taskflow.projections.ids import as_uuid, derived_id, uuid_or_none
from taskflow.projections.rows import (
    TERMINAL_STATUSES,
    DeadLetterRow,
    ExecutionRow,
    LogRow,
    ResultRow,
    TaskRow,
)
from taskflow.streams.dispatch import INITIAL_STATUS, dispatch_mode

# The seed's integer column keeps meaning "higher = more urgent".
PRIORITY_NUMBER = {"critical": 10, "high": 8, "medium": 5, "low": 2}
_encoder = msgspec.json.Encoder()

TaskEvent = (
    TaskSubmitted
    | TaskStarted
    | TaskSucceeded
    | TaskFailed
    | TaskReclaimed
    | TaskDeadLettered
    | TaskLogged
    | TaskQueued
    | TaskTimedOut
    | TaskCancelRequested
    | TaskCancelled
    | TaskProgressed
)


def fold_task(row: TaskRow | None, event: TaskEvent) -> TaskRow | None:
    """The tasks row after ``event``. None while the task has not been submitted (an
    event of an unknown task is ignored, never invented into a row)."""
    if isinstance(event, TaskSubmitted):
        return row if row is not None else _submitted(event)
    if row is None:
        return None
    row = msgspec.structs.replace(row, last_event_id=event.event_id, updated_at=event.occurred_at)
    match event:
        case TaskStarted() | TaskSucceeded() | TaskFailed() | TaskTimedOut():
            return _run_step(row, event)
        case TaskProgressed() | TaskLogged() | TaskCancelRequested():
            return _note(row, event)
        case TaskQueued() if event.reason == "requeued":
            # An operator's second chance: a fresh start, whatever the task's outcome was.
            return msgspec.structs.replace(
                row, status="PENDING", worker_id=None, retry_count=0, started_at=None, completed_at=None
            )
        case TaskQueued() | TaskReclaimed():
            # Back in line (the seed's recovery flow), unless an outcome already ended it.
            if row.status in TERMINAL_STATUSES:
                return row
            retry_count = max(row.retry_count, event.retry_count) if isinstance(event, TaskQueued) else row.retry_count
            return msgspec.structs.replace(row, status="PENDING", worker_id=None, retry_count=retry_count)
        case TaskDeadLettered():
            return msgspec.structs.replace(row, status="FAILED", completed_at=event.occurred_at)
        case TaskCancelled():
            return msgspec.structs.replace(row, status="CANCELLED", completed_at=event.occurred_at)
        case _:
            assert_never(event)


def _note(row: TaskRow, event: TaskProgressed | TaskLogged | TaskCancelRequested) -> TaskRow:
    """Events that change no status: progress shows on the task; logs have their table."""
    if isinstance(event, TaskProgressed):
        return msgspec.structs.replace(row, progress_percent=event.percent, progress_message=event.message or None)
    return row


def _run_step(row: TaskRow, event: TaskStarted | TaskSucceeded | TaskFailed | TaskTimedOut) -> TaskRow:
    worker_id = uuid_or_none(event.worker_id)
    match event:
        case TaskStarted():
            return msgspec.structs.replace(
                row,
                status="RUNNING",
                started_at=event.occurred_at,
                completed_at=None,
                worker_id=worker_id,
                attempts=max(row.attempts, event.attempt),
            )
        case TaskSucceeded():
            return msgspec.structs.replace(row, status="COMPLETED", completed_at=event.occurred_at, worker_id=worker_id)
        case TaskFailed() if event.retry_at is not None:
            # Another attempt is booked: SCHEDULED for the retry time (the seed has no RETRY).
            return msgspec.structs.replace(
                row,
                status="SCHEDULED",
                scheduled_at=event.retry_at,
                retry_count=event.retry_count,
                worker_id=worker_id,
            )
        case TaskFailed():
            return msgspec.structs.replace(row, status="FAILED", completed_at=event.occurred_at, worker_id=worker_id)
        case TaskTimedOut():
            return msgspec.structs.replace(row, status="TIMEOUT", completed_at=event.occurred_at, worker_id=worker_id)
        case _:
            assert_never(event)


def _submitted(event: TaskSubmitted) -> TaskRow:
    return TaskRow(
        task_id=as_uuid(event.aggregate_id),
        task_name=event.task_name,
        task_args=bytes(event.args).decode(),
        task_kwargs=bytes(event.kwargs).decode(),
        priority=PRIORITY_NUMBER[event.priority],
        priority_level=event.priority,
        status=_initial_status(event),
        retry_count=0,
        max_retries=event.max_retries,
        timeout_seconds=event.timeout_seconds,
        depends_on=[as_uuid(d) for d in event.depends_on],
        campaign_id=uuid_or_none(event.campaign_id),
        created_at=event.occurred_at,
        scheduled_at=event.scheduled_at,
        started_at=None,
        completed_at=None,
        worker_id=None,
        created_by=event.actor,
        correlation_id=event.correlation_id,
        attempts=0,
        progress_percent=None,
        progress_message=None,
        last_event_id=event.event_id,
        updated_at=event.occurred_at,
    )


def _initial_status(event: TaskSubmitted) -> str:
    return INITIAL_STATUS[dispatch_mode(event)]


def result_of(event: TaskEvent) -> ResultRow | None:
    """The task_results row a terminal event writes (one per task: the last outcome wins)."""
    match event:
        case TaskSucceeded():
            return _result(event, result_data=bytes(event.result).decode())
        case TaskFailed():
            return _result(event, error=(event.error_type, event.error, event.traceback))
        case TaskTimedOut():
            return _result(event, error=("Timeout", f"stopped after {event.timeout_seconds:g} s", None))
        case TaskCancelled():
            return _result(event, error=("Cancelled", event.reason or "cancelled", None))
        case TaskDeadLettered():
            return _result(event, error=("DeadLettered", event.reason, None))
        case _:
            return None


def _result(
    event: TaskEvent, *, result_data: str | None = None, error: tuple[str, str, str | None] | None = None
) -> ResultRow:
    task_id = as_uuid(event.aggregate_id)
    error_type, message, trace = error if error is not None else (None, None, None)
    return ResultRow(
        result_id=task_id,
        task_id=task_id,
        result_data=result_data,
        error_type=error_type,
        error_message=message,
        stack_trace=trace,
        created_at=event.occurred_at,
    )


def execution_of(event: TaskEvent) -> ExecutionRow | None:
    """The task_executions row (or the part of it) an event writes: the start of an
    attempt, or its end; merge_execution joins the two."""
    match event:
        case TaskStarted():
            return _execution(event, "RUNNING", started=True)
        case TaskTimedOut():
            return _execution(event, "TIMEOUT", error=f"timeout after {event.timeout_seconds:g} s")
        case TaskFailed():
            return _execution(event, "FAILED", error=event.error)
        case TaskSucceeded():
            return _execution(event, "COMPLETED")
        case _:
            return None


def _execution(
    event: TaskStarted | TaskSucceeded | TaskFailed | TaskTimedOut,
    status: str,
    *,
    started: bool = False,
    error: str | None = None,
) -> ExecutionRow:
    task_id = as_uuid(event.aggregate_id)
    duration = None if isinstance(event, TaskStarted) else round(event.duration_ms / 1000, 3)
    return ExecutionRow(
        execution_id=derived_id("execution", str(task_id), event.attempt, event.worker_id),
        task_id=task_id,
        worker_id=uuid_or_none(event.worker_id),
        attempt_number=event.attempt,
        started_at=event.occurred_at if started else None,
        completed_at=None if started else event.occurred_at,
        duration_seconds=duration,
        status=status,
        error_message=error,
    )


def dead_letter_of(event: TaskEvent, task: TaskRow | None) -> DeadLetterRow | None:
    """A poison entry, or a failure with no retry left, moves the task to the DLQ."""
    if task is None:
        return None
    if isinstance(event, TaskDeadLettered):
        reason, trace, attempts = event.reason, None, event.attempts or event.deliveries
    elif isinstance(event, TaskFailed) and event.retry_at is None:
        reason, trace, attempts = f"{event.error_type}: {event.error}", event.traceback, event.retry_count + 1
    else:
        return None
    return DeadLetterRow(
        dlq_id=derived_id("dlq", event.aggregate_id, event.event_id),
        task_id=as_uuid(event.aggregate_id),
        task_data=_task_data(task),
        failure_reason=reason,
        stack_trace=trace,
        total_attempts=attempts,
        moved_at=event.occurred_at,
    )


def _task_data(task: TaskRow) -> str:
    """The task as JSON, its arguments embedded as JSON (not strings), so the stored
    JSONB is the same whether the row came from an event or from PostgreSQL."""
    data = msgspec.structs.asdict(task)
    data["task_args"] = msgspec.Raw(task.task_args.encode())
    data["task_kwargs"] = msgspec.Raw(task.task_kwargs.encode())
    return _encoder.encode(data).decode()


def log_of(event: TaskEvent) -> LogRow | None:
    if not isinstance(event, TaskLogged):
        return None
    return LogRow(
        log_id=derived_id("log", event.aggregate_id, event.event_id),
        task_id=as_uuid(event.aggregate_id),
        level=event.level,
        message=event.message,
        metadata=_encoder.encode({"worker_id": event.worker_id, "data": event.metadata}).decode(),
        created_at=event.occurred_at,
    )
