"""Time travel: the state of tasks and workers at a moment, folded from their events by
the projections' own folds (so an answer here is what the tables would have shown)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from taskflow.events import AnyEvent
from taskflow.projections.batch import Changes, fold_into
from taskflow.projections.rows import TaskRow, WorkerRow


class TaskState(msgspec.Struct, frozen=True, kw_only=True):
    task_id: str
    task_name: str
    status: str
    # The worker running it (RUNNING) or that ran it last.
    worker_id: str | None
    attempts: int
    retry_count: int
    priority: str
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    last_event_id: str


class WorkerState(msgspec.Struct, frozen=True, kw_only=True):
    worker_id: str
    hostname: str | None
    status: str
    registered_at: datetime
    stopped_at: datetime | None
    # Tasks RUNNING on it at that moment (what it held when it died, for a dead one).
    holding: tuple[str, ...]


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    as_of: datetime
    # Events folded: every event appended at or before ``as_of`` that the question needs.
    events: int
    tasks: tuple[TaskState, ...]
    workers: tuple[WorkerState, ...]


class StateFold:
    """Events folded a slice at a time, oldest first; ``snapshot`` reads the result."""

    def __init__(self) -> None:
        self._changes = Changes()
        self.events = 0

    def add(self, events: list[AnyEvent]) -> None:
        fold_into(self._changes, events, {}, {})
        self.events += len(events)

    def snapshot(self, as_of: datetime) -> Snapshot:
        tasks = sorted(self._changes.tasks.values(), key=lambda row: (row.created_at, str(row.task_id)))
        running: dict[str, list[str]] = {}
        for row in tasks:
            if row.status == "RUNNING" and row.worker_id is not None:
                running.setdefault(str(row.worker_id), []).append(str(row.task_id))
        workers = sorted(self._changes.workers.values(), key=lambda row: (row.registered_at, str(row.worker_id)))
        return Snapshot(
            as_of=as_of,
            events=self.events,
            tasks=tuple(_task_state(row) for row in tasks),
            workers=tuple(_worker_state(row, running.get(str(row.worker_id), [])) for row in workers),
        )


def _task_state(row: TaskRow) -> TaskState:
    return TaskState(
        task_id=str(row.task_id),
        task_name=row.task_name,
        status=row.status,
        worker_id=None if row.worker_id is None else str(row.worker_id),
        attempts=row.attempts,
        retry_count=row.retry_count,
        priority=row.priority_level,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_event_id=row.last_event_id,
    )


def _worker_state(row: WorkerRow, holding: list[str]) -> WorkerState:
    return WorkerState(
        worker_id=str(row.worker_id),
        hostname=row.hostname,
        status=row.status,
        registered_at=row.registered_at,
        stopped_at=row.stopped_at,
        holding=tuple(holding),
    )


def narrowed(snapshot: Snapshot, *, statuses: frozenset[str] = frozenset(), worker: str | None = None) -> Snapshot:
    """Only tasks in ``statuses`` (all when empty) and, with ``worker``, only that worker
    and the tasks it ran or runs."""
    tasks = tuple(
        t
        for t in snapshot.tasks
        if (not statuses or t.status in statuses) and (worker is None or t.worker_id == worker)
    )
    workers = tuple(w for w in snapshot.workers if worker is None or w.worker_id == worker)
    return msgspec.structs.replace(snapshot, tasks=tasks, workers=workers)
