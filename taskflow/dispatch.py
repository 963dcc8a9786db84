"""What a dispatch entry carries, and the held form of it (scheduled or awaiting a retry)."""

from __future__ import annotations

import msgspec

from taskflow.events import Priority, TaskSubmitted


class HeldDispatch(msgspec.Struct, frozen=True, kw_only=True):
    """Everything needed to put a task on its dispatch stream later, without reading the
    event log again: stored in the held hash, keyed by task id, until its time comes."""

    task_id: str
    event_id: str
    event: str  # the TaskSubmitted payload as stored
    retry_count: int
    priority: Priority


_held_decoder = msgspec.json.Decoder(HeldDispatch)


def encode_held(held: HeldDispatch) -> bytes:
    return msgspec.json.encode(held)


def decode_held(raw: str | bytes) -> HeldDispatch:
    return _held_decoder.decode(raw)


def due_ms(event: TaskSubmitted) -> int | None:
    """When a task with a future ``scheduled_at`` is due (ms); None to dispatch it now."""
    if event.scheduled_at is None or event.scheduled_at <= event.occurred_at:
        return None
    return int(event.scheduled_at.timestamp() * 1000)


class TaskTemplate(msgspec.Struct, frozen=True, kw_only=True):
    """What each tick of a recurring schedule submits."""

    task_name: str
    args: msgspec.Raw
    kwargs: msgspec.Raw
    priority: Priority
    max_retries: int
    timeout_seconds: int


class ScheduleDefinition(msgspec.Struct, frozen=True, kw_only=True):
    """A recurring schedule as kept in Redis (``keys.schedules``) while it exists."""

    schedule_id: str
    cron: str
    template: TaskTemplate
    created_by: str | None
    created_event_id: str


_schedule_decoder = msgspec.json.Decoder(ScheduleDefinition)


def decode_schedule(raw: str | bytes) -> ScheduleDefinition:
    return _schedule_decoder.decode(raw)
