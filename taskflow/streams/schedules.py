"""Recurring (cron) schedules as kept in Redis (``Keyspace.cron_schedules``) while they exist."""

from __future__ import annotations

import msgspec

from taskflow.events import Priority


class TaskTemplate(msgspec.Struct, frozen=True, kw_only=True):
    """What each tick of a recurring schedule submits."""

    task_name: str
    args: msgspec.Raw
    kwargs: msgspec.Raw
    priority: Priority
    max_retries: int
    timeout_seconds: int


class ScheduleDefinition(msgspec.Struct, frozen=True, kw_only=True):
    """A recurring schedule as kept in Redis while it exists."""

    schedule_id: str
    cron: str
    template: TaskTemplate
    created_by: str | None
    created_event_id: str


_schedule_decoder = msgspec.json.Decoder(ScheduleDefinition)


def decode_schedule(raw: str | bytes) -> ScheduleDefinition:
    return _schedule_decoder.decode(raw)
