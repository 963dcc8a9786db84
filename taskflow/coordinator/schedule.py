"""Pure decisions of the scheduler: which event queues a held task."""

from __future__ import annotations

from datetime import datetime

from taskflow.dispatch import HeldDispatch
from taskflow.events import TaskQueued, TaskSubmitted


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
