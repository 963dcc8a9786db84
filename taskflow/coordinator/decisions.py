"""Pure decisions of the coordinator: the events that queue a task or bury a worker."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal
from uuid import NAMESPACE_URL, uuid5

from taskflow.cron import tick_task_id
from taskflow.events import TaskCancelled, TaskQueued, TaskSubmitted, WorkerDied
from taskflow.streams.dispatch import HeldDispatch
from taskflow.streams.marker import ENDED_BADLY
from taskflow.streams.schedules import ScheduleDefinition


def queued_event(
    held: HeldDispatch, submitted: TaskSubmitted, leader: str, now: datetime, *, parents_done: bool = False
) -> TaskQueued:
    """The event that puts a held task in line: its time came (its scheduled_at or a retry), or
    with ``parents_done`` its parents all completed."""
    reason: Literal["scheduled", "retry", "dependencies_met"] = (
        "dependencies_met" if parents_done else "retry" if held.retry_count else "scheduled"
    )
    return TaskQueued(
        aggregate_id=held.task_id,
        occurred_at=now,
        correlation_id=submitted.correlation_id,
        causation_id=held.event_id,
        traceparent=submitted.traceparent,
        actor=f"coordinator:{leader}",
        reason=reason,
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


def tick_event(definition: ScheduleDefinition, tick: datetime, now: datetime) -> TaskSubmitted:
    """The task one cron tick submits: the template, a task id derived from the tick."""
    template = definition.template
    task_id = tick_task_id(definition.schedule_id, tick)
    return TaskSubmitted(
        aggregate_id=task_id,
        occurred_at=now,
        correlation_id=uuid5(NAMESPACE_URL, task_id).hex,
        causation_id=definition.created_event_id,
        actor=definition.created_by,
        task_name=template.task_name,
        args=template.args,
        kwargs=template.kwargs,
        priority=template.priority,
        max_retries=template.max_retries,
        timeout_seconds=template.timeout_seconds,
        scheduled_at=tick,
    )


Release = Literal["release"]
Wait = Literal["wait"]
_HOW_IT_ENDED = {"failed": "failed", "timed_out": "timed out", "cancelled": "was cancelled"}


def decide_waiting(parent_states: dict[str, str | None]) -> Release | Wait | str:
    """For a task waiting on its parents: "release" when all completed, "wait" while any
    is still on its way (or its state is unknown), else the reason to cancel it."""
    for parent, state in parent_states.items():
        if state in ENDED_BADLY:
            return f"parent {parent} {_HOW_IT_ENDED[state]}"
    if all(state == "succeeded" for state in parent_states.values()):
        return "release"
    return "wait"


def child_cancelled_event(submitted: TaskSubmitted, reason: str, leader: str, now: datetime) -> TaskCancelled:
    return TaskCancelled(
        aggregate_id=submitted.aggregate_id,
        occurred_at=now,
        correlation_id=submitted.correlation_id,
        causation_id=submitted.event_id,
        actor=f"coordinator:{leader}",
        reason=reason,
    )
