"""A dispatch entry as the worker holds it while the task is in flight."""

from __future__ import annotations

import re

import msgspec

from taskflow.events import TaskSubmitted, decode
from taskflow.streams.fields import field_bytes, field_text
from taskflow.worker.errors import MalformedDispatchEntry


class DispatchEntry(msgspec.Struct, frozen=True, kw_only=True):
    stream: str
    entry_id: str
    partition: int
    delivery_count: int
    # Runs of this entry that began (on any worker) without an outcome being recorded.
    runs_begun: int
    # Retries already made before this attempt (0 on the first).
    retry_count: int
    task: TaskSubmitted


def parse_entry(
    *, stream: str, entry_id: str, partition: int, delivery_count: int, runs_begun: int, fields: dict[str, str]
) -> DispatchEntry:
    """Turn the raw fields written by ``submit.lua`` into a typed entry; anything else is a
    ``MalformedDispatchEntry`` (its text then goes into events: it must be encodable)."""
    try:
        event_id, retry_count = fields["event_id"], fields.get("retry_count", "0")
        if not _STREAM_ID.fullmatch(event_id) or not retry_count.isdigit():
            raise ValueError(
                f"event_id {field_text(event_id)!r} or retry_count {field_text(retry_count)!r} is malformed"
            )
        event = decode(event_id, field_bytes(fields["event"]))
    except (KeyError, ValueError) as e:  # EventDecodeError is a ValueError
        raise MalformedDispatchEntry(f"{stream} {entry_id}: {field_text(str(e))}") from e
    if not isinstance(event, TaskSubmitted):
        raise MalformedDispatchEntry(f"{stream} {entry_id}: holds {type(event).__name__}, not TaskSubmitted")
    return DispatchEntry(
        stream=stream,
        entry_id=entry_id,
        partition=partition,
        delivery_count=delivery_count,
        runs_begun=runs_begun,
        retry_count=int(retry_count),
        task=event,
    )


# What submit.lua writes: the TaskSubmitted's own stream id.
_STREAM_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
