"""Pure decisions of the worker: which event records what happened to an entry.

Every function takes ``now`` and returns an event; the caller does the I/O.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from taskflow.events import TaskDeadLettered, TaskFailed, TaskReclaimed, TaskStarted, TaskSucceeded
from taskflow.worker.entry import DispatchEntry


class Succeeded(msgspec.Struct, frozen=True):
    result: msgspec.Raw
    duration_ms: float


class Failed(msgspec.Struct, frozen=True):
    error_type: str
    error: str
    traceback: str
    duration_ms: float


RunResult = Succeeded | Failed


class Run(msgspec.Struct, frozen=True):
    """Run the reclaimed entry again."""


class DeadLetter(msgspec.Struct, frozen=True):
    reason: str


def decide_reclaimed(runs_begun: int, max_deliveries: int) -> Run | DeadLetter:
    """An entry whose runs began ``max_deliveries`` times without ever recording an
    outcome is poison: it kills or hangs its worker (invariant 5). Deliveries to a worker
    that died before starting the entry do not count against it."""
    if runs_begun >= max_deliveries:
        return DeadLetter(
            reason=f"poison: {runs_begun} runs began and none recorded an outcome (limit {max_deliveries})"
        )
    return Run()


def is_suspect(runs_begun: int) -> bool:
    """Outlived two owners mid-run: runs alone, so a crash it causes hits nothing else."""
    return runs_begun >= SUSPECT_FROM_RUNS


SUSPECT_FROM_RUNS = 2


def _envelope(entry: DispatchEntry, now: datetime, worker_id: str) -> dict[str, object]:
    task = entry.task
    return {
        "aggregate_id": task.aggregate_id,
        "occurred_at": now,
        "correlation_id": task.correlation_id,
        "causation_id": task.event_id,
        "traceparent": task.traceparent,
        "actor": worker_id,
    }


def started(entry: DispatchEntry, worker_id: str, now: datetime) -> TaskStarted:
    return TaskStarted(
        **_envelope(entry, now, worker_id),  # type: ignore[arg-type]
        worker_id=worker_id,
        attempt=entry.runs_begun + 1,
        dispatch_id=entry.entry_id,
    )


def finished(entry: DispatchEntry, worker_id: str, result: RunResult, now: datetime) -> TaskSucceeded | TaskFailed:
    envelope = _envelope(entry, now, worker_id)
    if isinstance(result, Succeeded):
        return TaskSucceeded(
            **envelope,  # type: ignore[arg-type]
            worker_id=worker_id,
            attempt=entry.runs_begun + 1,
            result=result.result,
            duration_ms=result.duration_ms,
        )
    return TaskFailed(
        **envelope,  # type: ignore[arg-type]
        worker_id=worker_id,
        attempt=entry.runs_begun + 1,
        error_type=result.error_type,
        error=result.error,
        traceback=result.traceback,
        duration_ms=result.duration_ms,
    )


def reclaimed(entry: DispatchEntry, worker_id: str, previous_owner: str, idle_ms: int, now: datetime) -> TaskReclaimed:
    return TaskReclaimed(
        **_envelope(entry, now, worker_id),  # type: ignore[arg-type]
        from_worker=previous_owner,
        to_worker=worker_id,
        delivery_count=entry.delivery_count,
        idle_ms=idle_ms,
    )


def dead_lettered(
    entry: DispatchEntry, worker_id: str, reason: str, previous_owner: str, now: datetime
) -> TaskDeadLettered:
    return TaskDeadLettered(
        **_envelope(entry, now, worker_id),  # type: ignore[arg-type]
        reason=reason,
        deliveries=entry.delivery_count,
        attempts=entry.runs_begun,
        last_worker=previous_owner or None,
    )
