"""The task and worker projections are pure folds: checked without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import msgspec

from taskflow.events import (
    DispatchRejected,
    TaskDeadLettered,
    TaskFailed,
    TaskReclaimed,
    TaskStarted,
    TaskSucceeded,
    WorkerStarted,
    WorkerStopped,
)
from taskflow.projections.batch import fold_batch
from taskflow.projections.tasks import fold_task
from tests.support.stack import submitted

T0 = datetime(2026, 3, 1, tzinfo=UTC)
WORKER = uuid4().hex


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _envelope(task_id: str, seconds: float, event_id: str) -> dict[str, object]:
    return {"aggregate_id": task_id, "occurred_at": _at(seconds), "correlation_id": "c", "event_id": event_id}


def _history(task_id: str) -> list[object]:
    return [
        msgspec.structs.replace(submitted("echo", task_id=task_id, a=1), occurred_at=_at(0), event_id="1-0"),
        TaskStarted(**_envelope(task_id, 1, "2-0"), worker_id=WORKER, attempt=1, dispatch_id="1-1"),  # type: ignore[arg-type]
        TaskSucceeded(
            **_envelope(task_id, 2, "3-0"), worker_id=WORKER, attempt=1, result=msgspec.Raw(b'{"a":1}'), duration_ms=5.0
        ),  # type: ignore[arg-type]
    ]


def test_submitted_started_succeeded_ends_completed_with_timestamps_from_events() -> None:
    task_id = str(uuid4())
    row = None
    for event in _history(task_id):
        row = fold_task(row, event)  # type: ignore[arg-type]
    assert row is not None
    assert (row.status, row.created_at, row.started_at, row.completed_at) == ("COMPLETED", _at(0), _at(1), _at(2))
    assert row.worker_id == UUID(WORKER) and row.attempts == 1 and row.last_event_id == "3-0"
    assert row.task_kwargs == '{"a":1}' and row.priority_level == "medium" and row.priority == 5


def test_an_event_of_a_task_never_submitted_creates_no_row() -> None:
    started = TaskStarted(**_envelope(str(uuid4()), 1, "2-0"), worker_id=WORKER, attempt=1, dispatch_id="x")  # type: ignore[arg-type]
    assert fold_task(None, started) is None


def test_a_resubmission_of_a_known_task_changes_nothing() -> None:
    first = _history(str(uuid4()))[0]
    row = fold_task(None, first)  # type: ignore[arg-type]
    assert fold_task(row, msgspec.structs.replace(first, event_id="9-0", task_name="other")) == row  # type: ignore[type-var]


def test_reclaim_puts_a_running_task_back_to_pending() -> None:
    task_id = str(uuid4())
    row = fold_task(fold_task(None, _history(task_id)[0]), _history(task_id)[1])  # type: ignore[arg-type]
    reclaimed = TaskReclaimed(
        **_envelope(task_id, 5, "4-0"), from_worker=WORKER, to_worker="w2", delivery_count=2, idle_ms=3000
    )  # type: ignore[arg-type]
    row = fold_task(row, reclaimed)
    assert row is not None and row.status == "PENDING" and row.worker_id is None


def test_a_batch_folds_to_the_same_rows_whether_split_or_whole() -> None:
    """Invariant 4: projections converge however the events are batched."""
    task_id = str(uuid4())
    events = _history(task_id)
    whole = fold_batch(events, {}, {})  # type: ignore[arg-type]
    first = fold_batch(events[:1], {}, {})  # type: ignore[arg-type]
    second = fold_batch(events[1:], dict(first.tasks), {})  # type: ignore[arg-type]
    assert second.tasks == whole.tasks
    assert second.results == whole.results
    exec_id = next(iter(whole.executions))
    merged = whole.executions[exec_id]
    assert merged.started_at == _at(1) and merged.completed_at == _at(2) and merged.status == "COMPLETED"


def test_failure_records_error_and_traceback_in_the_result_row() -> None:
    task_id = str(uuid4())
    events = [
        *_history(task_id)[:2],
        TaskFailed(
            **_envelope(task_id, 2, "3-0"),
            worker_id=WORKER,
            attempt=1,
            error_type="KeyError",
            error="'x'",
            traceback="Traceback: ...",
            duration_ms=1.0,
        ),
    ]  # type: ignore[arg-type]
    changes = fold_batch(events, {}, {})  # type: ignore[arg-type]
    result = changes.results[UUID(task_id)]
    assert changes.tasks[UUID(task_id)].status == "FAILED"
    assert (result.error_type, result.error_message, result.stack_trace) == ("KeyError", "'x'", "Traceback: ...")


def test_dead_lettering_fails_the_task_and_adds_a_dead_letter_row() -> None:
    task_id = str(uuid4())
    dead = TaskDeadLettered(**_envelope(task_id, 9, "5-0"), reason="poison", deliveries=4, last_worker=WORKER)  # type: ignore[arg-type]
    changes = fold_batch([*_history(task_id)[:2], dead], {}, {})  # type: ignore[arg-type]
    assert changes.tasks[UUID(task_id)].status == "FAILED"
    (row,) = changes.dead_letters.values()
    assert row.failure_reason == "poison" and row.total_attempts == 4


def test_worker_rows_follow_start_and_stop() -> None:
    worker_id = str(uuid4())
    start = WorkerStarted(
        aggregate_id=worker_id,
        occurred_at=_at(0),
        correlation_id="c",
        hostname="h",
        pid=7,
        capacity=3,
        queues=("low",),
        version="1",
    )
    stop = WorkerStopped(aggregate_id=worker_id, occurred_at=_at(9), correlation_id="c", reason="shutdown", processed=4)
    changes = fold_batch([start, stop], {}, {})
    row = changes.workers[UUID(worker_id)]
    assert (row.status, row.capacity, row.stopped_at, row.registered_at) == ("STOPPED", 3, _at(9), _at(0))


def test_a_failure_with_a_retry_booked_is_scheduled_and_counts_the_retry() -> None:
    task_id = str(uuid4())
    retry_at = _at(5)
    failed = TaskFailed(
        **_envelope(task_id, 2, "3-0"),
        worker_id=WORKER,
        attempt=1,
        error_type="E",
        error="x",
        traceback="",
        duration_ms=1.0,
        retry_at=retry_at,
        retry_count=1,
    )  # type: ignore[arg-type]
    changes = fold_batch([*_history(task_id)[:2], failed], {}, {})  # type: ignore[arg-type]
    row = changes.tasks[UUID(task_id)]
    assert (row.status, row.scheduled_at, row.retry_count) == ("SCHEDULED", retry_at, 1)
    assert not changes.dead_letters


def test_a_final_failure_moves_the_task_to_the_dead_letter_queue() -> None:
    task_id = str(uuid4())
    failed = TaskFailed(
        **_envelope(task_id, 2, "3-0"),
        worker_id=WORKER,
        attempt=1,
        error_type="E",
        error="x",
        traceback="tb",
        duration_ms=1.0,
        retry_count=3,
    )  # type: ignore[arg-type]
    changes = fold_batch([*_history(task_id)[:2], failed], {}, {})  # type: ignore[arg-type]
    (dead,) = changes.dead_letters.values()
    assert (dead.failure_reason, dead.stack_trace, dead.total_attempts) == ("E: x", "tb", 4)


def test_an_event_a_fold_raises_on_changes_nothing_and_is_set_aside() -> None:
    task_id = str(uuid4())
    history = _history(task_id)
    broken = WorkerStarted(
        aggregate_id="not-a-uuid",
        occurred_at=_at(1),
        correlation_id="c",
        event_id="1-5",
        hostname="h",
        pid=1,
        capacity=1,
        queues=("medium",),
        version="0",
    )
    with_broken = fold_batch([history[0], broken, *history[1:]], {}, {})  # type: ignore[list-item]
    without = fold_batch(history, {}, {})  # type: ignore[arg-type]
    assert with_broken.unfoldable.keys() == {"1-5"}
    assert with_broken.tasks == without.tasks and with_broken.workers == without.workers


def test_a_rejected_dispatch_entry_fails_its_task_and_is_quarantined() -> None:
    task_id = str(uuid4())
    rejected = DispatchRejected(
        aggregate_id=task_id,
        occurred_at=_at(3),
        correlation_id="c",
        event_id="4-0",
        actor=WORKER,
        stream="ns:{0}:q:medium",
        entry_id="3-1",
        partition=0,
        fields={"task_id": task_id, "event": "{"},
        error="undecodable",
        task_id=task_id,
    )
    changes = fold_batch([_history(task_id)[0], rejected], {}, {})  # type: ignore[list-item]
    assert changes.tasks[UUID(task_id)].status == "FAILED"
    (dead,) = changes.dead_letters.values()
    assert "3-1" in dead.failure_reason
    (record,) = changes.quarantined
    assert (record.source, record.stream, record.entry_id, record.aggregate_id) == (
        "worker",
        "ns:{0}:q:medium",
        "3-1",
        task_id,
    )
    assert msgspec.json.decode(record.raw) == {"task_id": task_id, "event": "{"}


def test_a_rejected_dispatch_entry_never_fails_a_task_that_ended() -> None:
    task_id = str(uuid4())
    completed = fold_batch(_history(task_id), {}, {}).tasks  # type: ignore[arg-type]
    rejected = DispatchRejected(
        aggregate_id=task_id,
        occurred_at=_at(9),
        correlation_id="c",
        event_id="9-0",
        stream="ns:{0}:q:medium",
        entry_id="8-0",
        partition=0,
        fields={"task_id": task_id},
        error="stray",
        task_id=task_id,
    )
    changes = fold_batch([rejected], completed, {})
    assert changes.tasks == {} and changes.dead_letters == {}
    assert [q.entry_id for q in changes.quarantined] == ["8-0"]
