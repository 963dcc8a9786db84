"""Which events one feed shows: its caller's (a user sees only the events of the tasks
they submitted, an admin sees everything) and its filters (task, task name, status, event
type). Pure: the task's owner and name come in as ``TaskMeta``."""

from __future__ import annotations

from typing import Final, NamedTuple

import msgspec

from taskflow.events import (
    AnyEvent,
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
    tag_of,
)
from taskflow.gateway.auth import Principal
from taskflow.streams.dispatch import INITIAL_STATUS, dispatch_mode

TaskEvent = (
    TaskSubmitted
    | TaskStarted
    | TaskSucceeded
    | TaskFailed
    | TaskTimedOut
    | TaskCancelRequested
    | TaskCancelled
    | TaskQueued
    | TaskReclaimed
    | TaskDeadLettered
    | TaskLogged
    | TaskProgressed
)
TASK_EVENTS: Final[tuple[type[TaskEvent], ...]] = TaskEvent.__args__


class TaskMeta(NamedTuple):
    """What the feed must know of a task to show its events: who submitted it, and its
    function's name. Only ``TaskSubmitted`` carries them."""

    owner: str | None
    task_name: str


def meta_of(submitted: TaskSubmitted) -> TaskMeta:
    return TaskMeta(submitted.actor, submitted.task_name)


def status_after(event: AnyEvent) -> str | None:
    """The task's status once ``event`` is folded (as the projection shows it), for the
    ``status`` filter; None for events that do not change it."""
    match event:
        case TaskSubmitted():
            return INITIAL_STATUS[dispatch_mode(event)]
        case TaskStarted():
            return "RUNNING"
        case TaskSucceeded():
            return "COMPLETED"
        case TaskFailed():
            return "SCHEDULED" if event.retry_at is not None else "FAILED"
        case TaskTimedOut():
            return "TIMEOUT"
        case TaskCancelled():
            return "CANCELLED"
        case TaskDeadLettered():
            return "FAILED"
        case TaskQueued():
            return "PENDING"
        case _:
            return None


class Selection(msgspec.Struct, frozen=True, kw_only=True):
    """One feed's caller and filters; an empty filter lets everything through."""

    principal: Principal
    task_id: str | None = None
    # One campaign's feed: every event of the campaign aggregate. Its caller was checked
    # as the campaign's owner (or an admin) when the feed opened.
    campaign_id: str | None = None
    task_names: frozenset[str] = frozenset()
    statuses: frozenset[str] = frozenset()
    event_types: frozenset[str] = frozenset()

    def needs_meta(self, event: AnyEvent) -> bool:
        """Whether ``shows`` must know the task's owner or name for this event."""
        return isinstance(event, TASK_EVENTS) and (not self.principal.sees_all or bool(self.task_names))

    def shows(self, event: AnyEvent, meta: TaskMeta | None) -> bool:
        if self.task_id is not None and event.aggregate_id != self.task_id:
            return False
        if self.event_types and tag_of(event) not in self.event_types:
            return False
        if self.campaign_id is not None:
            return event.aggregate_id == self.campaign_id
        if self.statuses and status_after(event) not in self.statuses:
            return False
        is_task_event = isinstance(event, TASK_EVENTS)
        if self.task_names and (not is_task_event or meta is None or meta.task_name not in self.task_names):
            return False
        if self.principal.sees_all:
            return True
        # A user sees the events of their own tasks, nothing of workers or schedules.
        return is_task_event and meta is not None and meta.owner == self.principal.sub
