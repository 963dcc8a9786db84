"""The stitched history (archive + Redis tail) against real Redis and PostgreSQL: no gap
and no repeat at the seam, also when entries were trimmed after the checkpoint was read,
filters pushed to both sides, and several partitions merged in append order."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from uuid import uuid4

import asyncpg
import msgspec
from redis.asyncio import Redis

from taskflow.archive import PROJECTION
from taskflow.events import AnyEvent, TaskSubmitted, TaskSucceeded, tag_of
from taskflow.replay import EventFilter, History, event_filter
from taskflow.replay.history import EVERYTHING, events_after
from taskflow.replay.position import START, position_of
from taskflow.settings import Settings
from taskflow.streams.keyspace import Keyspace
from tests.support.stack import all_events, running_projector, running_worker, submit, submitted
from tests.support.waiting import eventually


async def _archived(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM event_archive"))


async def _traffic(redis: Redis, settings: Settings, pool: asyncpg.Pool, n: int) -> list[AnyEvent]:
    """``n`` echo tasks run and every event archived; the events as Redis holds them."""
    for i in range(n):
        await submit(redis, settings, submitted("echo", i=i))
    async with running_projector(settings, redis, pool):
        async with running_worker(settings, redis):
            await eventually(lambda: _done(redis, settings, n), timeout_s=30)
        events = await all_events(redis, settings)  # the worker's stop included
        await eventually(_equals(lambda: _archived(pool), len(events)), timeout_s=30)
    return await all_events(redis, settings)


async def _done(redis: Redis, settings: Settings, n: int) -> bool:
    return sum(isinstance(e, TaskSucceeded) for e in await all_events(redis, settings)) >= n


def _equals(probe: Callable[[], Awaitable[int]], expected: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await probe() == expected

    return check


async def _read(redis: Redis, pool: asyncpg.Pool, settings: Settings, selection: EventFilter = EVERYTHING) -> list[str]:
    ks = Keyspace.of(settings)
    return [e.event_id async for _, e in events_after(redis, pool, ks, START, selection, page=7)]


async def test_archive_then_tail_without_gap_or_repeat_after_a_trim(
    redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    everything = await _traffic(redis, settings, pool, 12)
    ks = Keyspace.of(settings)
    stream = ks.events(0)
    # Events after the checkpoint, in Redis only (no projector now).
    for i in range(5):
        await submit(redis, settings, submitted("echo", late=i))
    late = [e for e in await all_events(redis, settings) if e.event_id not in {x.event_id for x in everything}]
    # Trim everything the archive holds (what the coordinator may do).
    checkpoint = await pool.fetchrow(
        "SELECT last_ms, last_seq FROM projection_checkpoints WHERE projection = $1", PROJECTION
    )
    await redis.xtrim(stream, minid=f"{checkpoint['last_ms']}-{checkpoint['last_seq'] + 1}", approximate=False)
    assert await redis.xlen(stream) == len(late)
    expected = [e.event_id for e in everything + late]
    assert await _read(redis, pool, settings) == expected
    # Resuming from any position in the middle gives exactly the rest.
    for cut in (1, 5, len(everything) - 1, len(everything), len(expected) - 2):
        after = position_of(expected[cut - 1], 0)
        rest = [e.event_id async for _, e in events_after(redis, pool, ks, after, page=4)]
        assert rest == expected[cut:]


async def test_entries_trimmed_after_the_checkpoint_was_read_come_from_the_archive(
    redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    """The race the tail guards against: the reader saw an old checkpoint, then the
    projector went on and the trimmer removed entries above what the reader read."""
    everything = await _traffic(redis, settings, pool, 10)
    expected = [e.event_id for e in everything]
    stale = expected[9]  # the checkpoint as the reader saw it: the archive phase stops here
    ms, seq = stale.split("-")
    await pool.execute("UPDATE projection_checkpoints SET last_ms = $1, last_seq = $2", int(ms), int(seq))
    trimmed_to = expected[30]
    await redis.xtrim(
        Keyspace.of(settings).events(0), minid=trimmed_to, approximate=False
    )  # 10..29 only in the archive now
    assert await _read(redis, pool, settings) == expected


async def test_filters_apply_to_the_archive_and_the_tail_alike(
    redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    everything = await _traffic(redis, settings, pool, 6)
    extra = submitted("echo", late=True)
    await submit(redis, settings, extra)  # in Redis only
    everything.append(next(e for e in await all_events(redis, settings) if e.aggregate_id == extra.aggregate_id))
    one = everything[0].aggregate_id
    assert await _read(redis, pool, settings, EventFilter(aggregate_id=one)) == [
        e.event_id for e in everything if e.aggregate_id == one
    ]
    assert await _read(redis, pool, settings, EventFilter(types=frozenset({"task.submitted"}))) == [
        e.event_id for e in everything if isinstance(e, TaskSubmitted)
    ]
    correlation = everything[-1].correlation_id
    assert await _read(redis, pool, settings, EventFilter(correlation_id=correlation)) == [
        e.event_id for e in everything if e.correlation_id == correlation
    ]
    middle_ms = int(everything[len(everything) // 2].event_id.split("-")[0])
    since = await _read(redis, pool, settings, EventFilter(since_ms=middle_ms))
    until = await _read(redis, pool, settings, EventFilter(until_ms=middle_ms))
    assert until + since == [e.event_id for e in everything]
    assert all(int(i.split("-")[0]) >= middle_ms for i in since)


async def test_partitions_merge_in_append_order(redis: Redis, settings: Settings, pool: asyncpg.Pool) -> None:
    settings = msgspec.structs.replace(settings, partitions=3)
    ks = Keyspace.of(settings)
    # Ids chosen so every partition gets four (random ones leave one empty now and then).
    ids = [str(uuid4()) for _ in range(200)]
    chosen = [[i for i in ids if ks.partition_of(i) == p][:4] for p in range(3)]
    for i, task_id in enumerate(t for trio in zip(*chosen, strict=True) for t in trio):
        await submit(redis, settings, submitted("echo", task_id=task_id, i=i))
    async with History.open(settings) as history:
        read = [e async for e in history.events()]
    appended = sorted(
        (await all_events(redis, settings)),
        key=lambda e: (*map(int, e.event_id.split("-")), ks.partition_of(e.aggregate_id)),
    )
    assert [e.event_id for e in read] == [e.event_id for e in appended] and len(read) == 12
    assert {ks.partition_of(e.aggregate_id) for e in read} == {0, 1, 2}
    assert [tag_of(e) for e in read] == ["task.submitted"] * 12


def test_an_unknown_event_type_is_refused_by_name() -> None:
    try:
        event_filter(types=["task.finished"])
    except ValueError as e:
        assert "unknown event type task.finished" in str(e)
    else:
        raise AssertionError("an unknown type was accepted")
