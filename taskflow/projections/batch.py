"""Folding one batch of events into the rows to write: pure, given the rows already stored."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from taskflow.events import AnyEvent, ScheduleCreated, ScheduleDeleted, TaskQueued
from taskflow.projections.ids import as_uuid
from taskflow.projections.rows import DeadLetterRow, ExecutionRow, LogRow, ResultRow, TaskRow, WorkerRow
from taskflow.projections.tasks import TaskEvent, dead_letter_of, execution_of, fold_task, log_of, result_of
from taskflow.projections.workers import WORKER_EVENTS, fold_worker


class Changes(msgspec.Struct, kw_only=True):
    """Rows to upsert, keyed by primary key; the last write of a key in the batch wins."""

    tasks: dict[UUID, TaskRow] = msgspec.field(default_factory=dict)
    results: dict[UUID, ResultRow] = msgspec.field(default_factory=dict)
    executions: dict[UUID, ExecutionRow] = msgspec.field(default_factory=dict)
    dead_letters: dict[UUID, DeadLetterRow] = msgspec.field(default_factory=dict)
    logs: dict[UUID, LogRow] = msgspec.field(default_factory=dict)
    # task id -> when it was first requeued in this batch: marks its open dead-letter rows
    # stored before the batch (rows of the batch itself are marked as they are folded).
    requeued: dict[UUID, datetime] = msgspec.field(default_factory=dict)
    workers: dict[UUID, WorkerRow] = msgspec.field(default_factory=dict)
    # Tasks first submitted in this batch and stored nowhere yet: neither they nor any row
    # of theirs (results, executions) can exist, so they are inserted without a conflict check.
    new_tasks: set[UUID] = msgspec.field(default_factory=set)


SCHEDULE_EVENTS = (ScheduleCreated, ScheduleDeleted)


def task_ids(events: list[AnyEvent]) -> set[UUID]:
    """Every task with events here: even one submitted here may exist already (a resubmit
    after its marker expired), and its stored row must win over the new submission."""
    return {as_uuid(i) for i in {e.aggregate_id for e in events if type(e) not in _NOT_TASK_EVENTS}}


def worker_ids(events: list[AnyEvent]) -> set[UUID]:
    return {as_uuid(i) for i in {e.aggregate_id for e in events if type(e) in _WORKER_EVENTS}}


# Exact types (events are final classes): a set lookup instead of isinstance per event.
_WORKER_EVENTS = frozenset(WORKER_EVENTS)
_NOT_TASK_EVENTS = frozenset((*WORKER_EVENTS, *SCHEDULE_EVENTS))


def fold_batch(
    events: list[AnyEvent], stored_tasks: dict[UUID, TaskRow], stored_workers: dict[UUID, WorkerRow]
) -> Changes:
    """Apply ``events`` in stream order on top of the stored rows."""
    return fold_into(Changes(), events, stored_tasks, stored_workers)


def fold_into(
    changes: Changes, events: list[AnyEvent], stored_tasks: dict[UUID, TaskRow], stored_workers: dict[UUID, WorkerRow]
) -> Changes:
    """``fold_batch`` continued: apply ``events`` on top of ``changes`` (the batch so far),
    so a batch can be folded a slice at a time."""
    for event in events:
        if isinstance(event, SCHEDULE_EVENTS):
            continue  # archived; schedules are read live from Redis (GET /api/v1/schedules)
        if isinstance(event, WORKER_EVENTS):
            worker_id = as_uuid(event.aggregate_id)
            folded = fold_worker(changes.workers.get(worker_id) or stored_workers.get(worker_id), event)
            if folded is not None:
                changes.workers[worker_id] = folded
            continue
        _fold_task_event(changes, event, stored_tasks)
    return changes


def _fold_task_event(changes: Changes, event: TaskEvent, stored_tasks: dict[UUID, TaskRow]) -> None:
    task_id = as_uuid(event.aggregate_id)
    before = changes.tasks.get(task_id) or stored_tasks.get(task_id)
    task = fold_task(before, event)
    if task is None:
        return  # an event of a task never submitted: nothing to attach it to
    if before is None:
        changes.new_tasks.add(task_id)
    changes.tasks[task_id] = task
    if (result := result_of(event)) is not None:
        changes.results[task_id] = result
    if (execution := execution_of(event)) is not None:
        previous = changes.executions.get(execution.execution_id)
        changes.executions[execution.execution_id] = merge_execution(previous, execution)
    if (dead := dead_letter_of(event, task)) is not None:
        changes.dead_letters[dead.dlq_id] = dead
    if (line := log_of(event)) is not None:
        changes.logs[line.log_id] = line
    if isinstance(event, TaskQueued) and event.reason == "requeued":
        _mark_requeued(changes, task_id, event.occurred_at)


def _mark_requeued(changes: Changes, task_id: UUID, at: datetime) -> None:
    """Close the task's open dead-letter rows, as they stand at this point of the batch:
    a task dead-lettered again later in the batch gets a new, open row."""
    for dlq_id, row in changes.dead_letters.items():
        if row.task_id == task_id and row.requeued_at is None:
            changes.dead_letters[dlq_id] = msgspec.structs.replace(row, requeued_at=at)
    changes.requeued.setdefault(task_id, at)


def merge_execution(old: ExecutionRow | None, new: ExecutionRow) -> ExecutionRow:
    """The start and the end of an attempt may arrive in one batch or in two."""
    if old is None:
        return new
    return ExecutionRow(
        execution_id=new.execution_id,
        task_id=new.task_id,
        worker_id=new.worker_id or old.worker_id,
        attempt_number=new.attempt_number,
        started_at=new.started_at or old.started_at,
        completed_at=new.completed_at or old.completed_at,
        duration_seconds=new.duration_seconds if new.duration_seconds is not None else old.duration_seconds,
        status=new.status,
        error_message=new.error_message or old.error_message,
    )
