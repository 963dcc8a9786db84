"""Pure decisions of the coordinator: the events that queue a task or bury a worker."""

from __future__ import annotations

from datetime import UTC, datetime

from taskflow.dispatch import HeldDispatch
from taskflow.events import TaskQueued, TaskSubmitted, WorkerDied


def queued_event(held: HeldDispatch, submitted: TaskSubmitted, leader: str, now: datetime) -> TaskQueued:
    return TaskQueued(
        aggregate_id=held.task_id,
        occurred_at=now,
        correlation_id=submitted.correlation_id,
        causation_id=held.event_id,
        traceparent=submitted.traceparent,
        actor=f"coordinator:{leader}",
        reason="retry" if held.retry_count else "scheduled",
        retry_count=held.retry_count,
    )


def died_event(worker_id: str, last_heartbeat_ms: float, leader: str, now: datetime) -> WorkerDied:
    last = datetime.fromtimestamp(last_heartbeat_ms / 1000, tz=UTC)
    return WorkerDied(
        aggregate_id=worker_id,
        occurred_at=now,
        correlation_id=worker_id,
        actor=f"coordinator:{leader}",
        silent_s=round((now - last).total_seconds(), 3),
        last_heartbeat=last,
    )
