"""A dispatch entry as the worker holds it while the task is in flight."""

from __future__ import annotations

import msgspec

from taskflow.events import EventDecodeError, TaskSubmitted, decode
from taskflow.streams import field_bytes
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
    """Turn the raw fields written by ``submit.lua`` into a typed entry."""
    try:
        event = decode(fields["event_id"], field_bytes(fields["event"]))
    except (KeyError, EventDecodeError) as e:
        raise MalformedDispatchEntry(f"{stream} {entry_id}: {e}") from e
    if not isinstance(event, TaskSubmitted):
        raise MalformedDispatchEntry(f"{stream} {entry_id}: holds {type(event).__name__}, not TaskSubmitted")
    return DispatchEntry(
        stream=stream,
        entry_id=entry_id,
        partition=partition,
        delivery_count=delivery_count,
        runs_begun=runs_begun,
        retry_count=int(fields.get("retry_count", 0)),
        task=event,
    )
