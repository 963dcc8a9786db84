"""Stream plumbing every process shares: consumer groups and plain event appends."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from taskflow import keys
from taskflow.events import AnyEvent, encode, tag_of
from taskflow.settings import Settings


async def ensure_groups(redis: Redis, settings: Settings) -> None:
    """Create the ``workers`` and ``projector`` groups if missing.

    Groups start at ``0`` rather than ``$`` so entries appended before the first consumer
    came up are still delivered.
    """
    for p in range(settings.partitions):
        for stream in keys.dispatch_streams(settings.namespace, p):
            await _create_group(redis, stream, keys.WORKERS_GROUP)
        await _create_group(redis, keys.events(settings.namespace, p), keys.PROJECTOR_GROUP)


async def _create_group(redis: Redis, stream: str, group: str) -> None:
    try:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as e:
        # BUSYGROUP: another process created it first, which is what we wanted.
        if "BUSYGROUP" not in str(e):
            raise


async def append_event(redis: Redis, settings: Settings, event: AnyEvent) -> str:
    """Append an event that needs no companion write (e.g. a worker's lifecycle)."""
    p = keys.partition_of(event.aggregate_id, settings.partitions)
    event_id: str = await redis.xadd(keys.events(settings.namespace, p), {"type": tag_of(event), "data": encode(event)})
    return event_id


# Every client decodes replies with this error handler (connections.open_redis): an entry
# holding bytes that are not UTF-8 (appended by hand, or by a buggy writer) then reads as
# text instead of failing every read of its stream, and ``field_bytes`` gets it back
# exactly (ADR 0014).
DECODE_ERRORS = "surrogateescape"


def field_bytes(value: str) -> bytes:
    """A stream field's bytes exactly as they were written."""
    return value.encode("utf-8", DECODE_ERRORS)


def field_text(value: str) -> str:
    """A stream field as printable text, bytes that are not UTF-8 written as ``\\xNN``:
    what may be put into an event or a log line."""
    return field_bytes(value).decode("utf-8", "backslashreplace")
