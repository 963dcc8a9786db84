"""The newest events of a namespace, decoded, in append order across partitions (one
Redis clock orders every stream's ids), and the ones appended after them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

from redis.asyncio import Redis

from taskflow.events import AnyEvent, EventDecodeError, decode
from taskflow.streams.keyspace import Keyspace

BLOCK_MS = 1000


def _order(event: AnyEvent) -> tuple[int, int]:
    ms, _, seq = event.event_id.partition("-")
    return int(ms), int(seq or 0)


def _decoded(entries: list[tuple[str, dict[str, str]]]) -> list[AnyEvent]:
    found = []
    for entry_id, fields in entries:
        try:
            found.append(decode(entry_id, fields["data"].encode()))
        except (KeyError, EventDecodeError):
            continue  # quarantined by the projector; not an event to show
    return found


async def last_events(redis: Redis, keyspace: Keyspace, count: int) -> tuple[list[AnyEvent], dict[str, str]]:
    """The ``count`` newest events over every partition, oldest first, and where each
    stream was read up to (``follow_events`` goes on from there, missing nothing)."""
    found: list[AnyEvent] = []
    read_up_to: dict[str, str] = {}
    for p in keyspace.all_partitions:
        stream = keyspace.events(p)
        entries = list(reversed(await redis.xrevrange(stream, count=count)))
        read_up_to[stream] = entries[-1][0] if entries else "0-0"
        found += _decoded(entries)
    return sorted(found, key=_order)[-count:], read_up_to


async def follow_events(redis: Redis, read_up_to: dict[str, str]) -> AsyncIterator[AnyEvent]:
    """Events appended after ``read_up_to`` (stream -> last id read), as they arrive."""
    streams = dict(read_up_to)
    while True:
        answer = await redis.xread(cast("Any", streams), count=1000, block=BLOCK_MS)
        batch: list[AnyEvent] = []
        for stream, entries in answer or []:
            streams[stream] = entries[-1][0]
            batch += _decoded(entries)
        for event in sorted(batch, key=_order):
            yield event
