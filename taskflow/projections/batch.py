"""Folding one batch of events into the rows to write: pure, given the rows already stored."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec
import structlog

from taskflow.events import (
    CAMPAIGN_EVENTS,
    AnyEvent,
    DispatchRejected,
    OperatorActed,
    ScheduleCreated,
    ScheduleDeleted,
    TaskDeadLettered,
    TaskQueued,
)
from taskflow.projections.campaigns import CampaignChanges, fold_campaign
from taskflow.projections.ids import as_uuid, derived_id, uuids_of
from taskflow.projections.quarantine import QuarantineRecord, of_rejected
from taskflow.projections.rows import (
    TERMINAL_STATUSES,
    AuditRow,
    DeadLetterRow,
    ExecutionRow,
    LogRow,
    ResultRow,
    TaskRow,
    WorkerRow,
)
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
    # Campaigns and their recipients: new rows, and updates of stored ones.
    campaigns: CampaignChanges = msgspec.field(default_factory=CampaignChanges)
    # Operator actions, by audit id (the audit_log table).
    audit: dict[UUID, AuditRow] = msgspec.field(default_factory=dict)
    # Entries kept in quarantined_entries instead (projections/quarantine.py).
    quarantined: list[QuarantineRecord] = msgspec.field(default_factory=list)
    # Events a fold raised on, by event id -> the error: quarantined, not archived.
    unfoldable: dict[str, str] = msgspec.field(default_factory=dict)


log = structlog.get_logger()
_json = msgspec.json.Encoder()


SCHEDULE_EVENTS = (ScheduleCreated, ScheduleDeleted)


def task_ids(events: list[AnyEvent]) -> set[UUID]:
    """Every task with events here: even one submitted here may exist already (a resubmit
    after its marker expired), and its stored row must win over the new submission."""
    ids = {e.aggregate_id for e in events if type(e) not in _NOT_TASK_EVENTS}
    ids.update(e.task_id for e in events if type(e) is DispatchRejected and e.task_id)
    return uuids_of(ids)


def worker_ids(events: list[AnyEvent]) -> set[UUID]:
    return uuids_of({e.aggregate_id for e in events if type(e) in _WORKER_EVENTS})


# Exact types (events are final classes): a set lookup instead of isinstance per event.
_WORKER_EVENTS = frozenset(WORKER_EVENTS)
_NOT_TASK_EVENTS = frozenset((*WORKER_EVENTS, *SCHEDULE_EVENTS, *CAMPAIGN_EVENTS, DispatchRejected, OperatorActed))


def fold_batch(
    events: list[AnyEvent], stored_tasks: dict[UUID, TaskRow], stored_workers: dict[UUID, WorkerRow]
) -> Changes:
    """Apply ``events`` in stream order on top of the stored rows."""
    return fold_into(Changes(), events, stored_tasks, stored_workers)


def fold_into(
    changes: Changes, events: list[AnyEvent], stored_tasks: dict[UUID, TaskRow], stored_workers: dict[UUID, WorkerRow]
) -> Changes:
    """``fold_batch`` continued: apply ``events`` on top of ``changes`` (the batch so far),
    so a batch can be folded a slice at a time.

    An event a fold raises on changes nothing (each fold computes before it assigns) and
    is set aside in ``changes.unfoldable``: the projector's one catch-all per message
    (HOUSE_STYLE §6), so one bad event never stops the projection of the others."""
    for event in events:
        try:
            _fold_event(changes, event, stored_tasks, stored_workers)
        except Exception as e:  # noqa: BLE001 - recorded with the event, which is quarantined
            log.error("event_unfoldable", event_id=event.event_id, event_type=type(event).__name__, error=repr(e))
            changes.unfoldable[event.event_id] = repr(e)
    return changes


def _fold_event(
    changes: Changes, event: AnyEvent, stored_tasks: dict[UUID, TaskRow], stored_workers: dict[UUID, WorkerRow]
) -> None:
    if isinstance(event, SCHEDULE_EVENTS):
        return  # archived; schedules are read live from Redis (GET /api/v1/schedules)
    if isinstance(event, CAMPAIGN_EVENTS):
        fold_campaign(changes.campaigns, event)
        return
    if isinstance(event, OperatorActed):
        row = audit_row(event)
        changes.audit[row.audit_id] = row
        return
    if isinstance(event, WORKER_EVENTS):
        worker_id = as_uuid(event.aggregate_id)
        folded = fold_worker(changes.workers.get(worker_id) or stored_workers.get(worker_id), event)
        if folded is not None:
            changes.workers[worker_id] = folded
        return
    if isinstance(event, DispatchRejected):
        record = of_rejected(event)
        if event.task_id and _still_live(changes, stored_tasks, event.task_id):
            # The task can never run from that entry: it fails, dead-lettered with the
            # reason, and a retry or requeue dispatches its intact TaskSubmitted again.
            _fold_task_event(changes, rejected_as_dead_letter(event, event.task_id), stored_tasks)
        changes.quarantined.append(record)
        return
    _fold_task_event(changes, event, stored_tasks)


def audit_row(event: OperatorActed) -> AuditRow:
    """The audit trail's row: one per action, its id derived from the event (an
    aggregate's events share one stream, so its id and the aggregate are unique)."""
    return AuditRow(
        audit_id=derived_id("audit", event.aggregate_id, event.event_id),
        event_id=event.event_id,
        occurred_at=event.occurred_at,
        actor=event.actor or "",
        action=event.action,
        target_kind=event.target_kind,
        target=event.aggregate_id,
        reason=event.reason,
        via=event.via,
        request_id=event.request_id,
        detail=_json.encode(event.detail).decode(),
    )


def _still_live(changes: Changes, stored_tasks: dict[UUID, TaskRow], task_id: str) -> bool:
    """A task that ended already is not failed by a stray entry naming it."""
    row = changes.tasks.get(as_uuid(task_id)) or stored_tasks.get(as_uuid(task_id))
    return row is not None and row.status not in TERMINAL_STATUSES


def rejected_as_dead_letter(event: DispatchRejected, task_id: str) -> TaskDeadLettered:
    """What a rejected dispatch entry means for the task it names."""
    return TaskDeadLettered(
        aggregate_id=task_id,
        occurred_at=event.occurred_at,
        correlation_id=event.correlation_id,
        causation_id=event.causation_id,
        actor=event.actor,
        event_id=event.event_id,
        reason=f"dispatch entry {event.entry_id} could not be read (quarantined): {event.error}",
        deliveries=1,
        last_worker=event.actor,
    )


def _fold_task_event(changes: Changes, event: TaskEvent, stored_tasks: dict[UUID, TaskRow]) -> None:
    task_id = as_uuid(event.aggregate_id)
    before = changes.tasks.get(task_id) or stored_tasks.get(task_id)
    task = fold_task(before, event)
    if task is None:
        return  # an event of a task never submitted: nothing to attach it to
    # Everything is computed before anything is assigned: an event that raises leaves
    # ``changes`` as it was.
    result = result_of(event)
    execution = execution_of(event)
    if execution is not None:
        execution = merge_execution(changes.executions.get(execution.execution_id), execution)
    dead = dead_letter_of(event, task)
    line = log_of(event)
    if before is None:
        changes.new_tasks.add(task_id)
    changes.tasks[task_id] = task
    if result is not None:
        changes.results[task_id] = result
    if execution is not None:
        changes.executions[execution.execution_id] = execution
    if dead is not None:
        changes.dead_letters[dead.dlq_id] = dead
    if line is not None:
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
