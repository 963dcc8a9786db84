"""The consumer groups every process relies on, and the one plain event append."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from taskflow.events import AnyEvent, encode, tag_of
from taskflow.streams.keyspace import PROJECTOR_GROUP, WORKERS_GROUP, Keyspace


async def ensure_groups(redis: Redis, keyspace: Keyspace) -> None:
    """Create the ``workers`` and ``projector`` groups if missing.

    Groups start at ``0`` rather than ``$`` so entries appended before the first consumer
    came up are still delivered.
    """
    for p in keyspace.all_partitions:
        for stream in keyspace.dispatch_streams(p):
            await _create_group(redis, stream, WORKERS_GROUP)
        await _create_group(redis, keyspace.events(p), PROJECTOR_GROUP)


async def _create_group(redis: Redis, stream: str, group: str) -> None:
    try:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as e:
        # BUSYGROUP: another process created it first, which is what we wanted.
        if "BUSYGROUP" not in str(e):
            raise


async def append_event(redis: Redis, keyspace: Keyspace, event: AnyEvent) -> str:
    """Append an event that needs no companion write (e.g. a worker's lifecycle)."""
    event_id: str = await redis.xadd(
        keyspace.events_of(event.aggregate_id), {"type": tag_of(event), "data": encode(event)}
    )
    return event_id


async def append_events(redis: Redis, keyspace: Keyspace, events: list[AnyEvent]) -> list[str]:
    """Append events of ONE aggregate together (MULTI/EXEC: all or none), in order; their ids."""
    assert len({e.aggregate_id for e in events}) == 1, "one aggregate: one stream"
    async with redis.pipeline(transaction=True) as pipe:
        for event in events:
            pipe.xadd(keyspace.events_of(event.aggregate_id), {"type": tag_of(event), "data": encode(event)})
        ids: list[str] = await pipe.execute()
    return ids
