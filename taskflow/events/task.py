"""Events of the task aggregate (aggregate_id = task_id)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from taskflow.events.base import Event

Priority = Literal["critical", "high", "medium", "low"]
# Highest first: the order in which workers drain dispatch streams.
PRIORITIES: tuple[Priority, ...] = ("critical", "high", "medium", "low")
EMPTY_ARGS = msgspec.Raw(b"[]")
EMPTY_KWARGS = msgspec.Raw(b"{}")


class TaskSubmitted(Event, frozen=True, kw_only=True, tag="task.submitted"):
    """A client asked for a task. v2: ``priority`` became a level name (v1: int 1-10)."""

    task_name: str
    # User JSON stays raw: the projector stores it as JSONB without decoding it.
    args: msgspec.Raw = EMPTY_ARGS
    kwargs: msgspec.Raw = EMPTY_KWARGS
    priority: Priority = "medium"
    max_retries: int = 5
    timeout_seconds: int = 300
    scheduled_at: datetime | None = None
    depends_on: tuple[str, ...] = ()
    # True when the task is held until its parents complete (False if they already had).
    waits_for_parents: bool = False
    campaign_id: str | None = None
    idempotency_key: str | None = None
    schema_version: int = 2


class TaskStarted(Event, frozen=True, kw_only=True, tag="task.started"):
    """A worker began an attempt. ``attempt`` is the dispatch entry's delivery count."""

    worker_id: str
    attempt: int
    dispatch_id: str


class TaskSucceeded(Event, frozen=True, kw_only=True, tag="task.succeeded"):
    worker_id: str
    attempt: int
    result: msgspec.Raw
    duration_ms: float


class TaskFailed(Event, frozen=True, kw_only=True, tag="task.failed"):
    """The task function raised; ``traceback`` is the formatted stack. With ``retry_at``
    set another attempt is scheduled (``retry_count`` retries so far, this one included)."""

    worker_id: str
    attempt: int
    error_type: str
    error: str
    traceback: str
    duration_ms: float
    retry_at: datetime | None = None
    retry_count: int = 0


class TaskTimedOut(Event, frozen=True, kw_only=True, tag="task.timed_out"):
    """The run outlived ``timeout_seconds`` and was stopped (a sync task's process killed)."""

    worker_id: str
    attempt: int
    timeout_seconds: float
    duration_ms: float


class TaskCancelRequested(Event, frozen=True, kw_only=True, tag="task.cancel_requested"):
    """Someone asked to cancel a running task; its worker stops it and records TaskCancelled."""

    reason: str = ""


class TaskCancelled(Event, frozen=True, kw_only=True, tag="task.cancelled"):
    """The task will not run (again). ``worker_id`` is set when a running task was stopped."""

    reason: str = ""
    worker_id: str | None = None


class TaskQueued(Event, frozen=True, kw_only=True, tag="task.queued"):
    """A held task was put on its dispatch stream: its time came, a retry fell due."""

    reason: Literal["scheduled", "retry", "requeued", "dependencies_met"]
    retry_count: int = 0


class TaskReclaimed(Event, frozen=True, kw_only=True, tag="task.reclaimed"):
    """A worker took over the dispatch entry of a consumer that stopped renewing its lease."""

    from_worker: str
    to_worker: str
    delivery_count: int
    idle_ms: int


class TaskDeadLettered(Event, frozen=True, kw_only=True, tag="task.dead_lettered"):
    """The task will not run again by itself: poison entry or retries exhausted."""

    reason: str
    deliveries: int
    last_worker: str | None = None
    # Runs that began without an outcome (deliveries also count claims that never ran).
    attempts: int = 0


class TaskLogged(Event, frozen=True, kw_only=True, tag="task.logged"):
    """Task code wrote a log line (kept in ``task_logs``)."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"]
    message: str
    worker_id: str
    metadata: msgspec.Raw = msgspec.Raw(b"null")


class TaskProgressed(Event, frozen=True, kw_only=True, tag="task.progressed"):
    """Task code reported how far it got (shown on the task)."""

    percent: float
    message: str = ""
    worker_id: str


class ScheduleCreated(Event, frozen=True, kw_only=True, tag="schedule.created"):
    """A recurring schedule (aggregate_id = schedule id): each cron tick submits a task
    built from ``template`` (a TaskSubmitted without envelope) with a task id derived
    from the schedule and the tick, so a tick fires once however often it is tried."""

    cron: str
    template: msgspec.Raw
    first_due: datetime


class ScheduleDeleted(Event, frozen=True, kw_only=True, tag="schedule.deleted"):
    reason: str = ""


class DispatchRejected(Event, frozen=True, kw_only=True, tag="dispatch.rejected"):
    """A worker could not read a dispatch entry (a field missing, an event that does not
    decode): it took the entry off its stream and kept it here, whole, for the quarantine.

    ``aggregate_id`` is the task's id when the entry still names a valid one (the task
    then fails, dead-lettered, and can be retried from its intact TaskSubmitted), else
    ``dispatch-<entry id>``.
    """

    stream: str
    entry_id: str
    partition: int
    # The entry's fields exactly as they were read.
    fields: dict[str, str]
    error: str
    task_id: str | None = None
