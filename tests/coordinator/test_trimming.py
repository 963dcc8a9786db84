"""Trimming the streams on real Redis and PostgreSQL (invariant 8): never below what a group
has not acknowledged or the archive does not hold, and below that, everything older than the
retention window goes."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import asyncpg
import msgspec
import pytest
from redis.asyncio import Redis
from structlog.testing import capture_logs

from taskflow.coordinator import trimmer as trimmer_module
from taskflow.coordinator.scripts import CoordinatorScripts
from taskflow.coordinator.trimmer import Trimmed, Trimmer
from taskflow.events import TaskSubmitted
from taskflow.outage import Outage
from taskflow.settings import Settings
from taskflow.streams.groups import ensure_groups
from taskflow.streams.keyspace import PROJECTOR_GROUP, WORKERS_GROUP, Keyspace
from taskflow.streams.submit import Submitter
from tests.support.stack import running_coordinator, running_projector, running_worker
from tests.support.waiting import eventually

# Redis keeps a stream in nodes of 100 entries (stream-node-max-entries) and `XTRIM ~`
# removes whole nodes: a few hundred entries show what goes and what stays.
ENTRIES = 500


def trimmer_of(settings: Settings, redis: Redis, pool: asyncpg.Pool) -> Trimmer:
    keyspace = Keyspace.of(settings)
    return Trimmer(settings, redis, pool, CoordinatorScripts(redis, keyspace), Outage("redis"))


def without_retention(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, stream_retention_seconds=0)


@pytest.fixture
async def keyspace(settings: Settings, redis: Redis) -> Keyspace:
    """The test's keyspace with its consumer groups, as every process starts."""
    keyspace = Keyspace.of(settings)
    await ensure_groups(redis, keyspace)
    return keyspace


@pytest.fixture
def trimmer(settings: Settings, redis: Redis, pool: asyncpg.Pool) -> Trimmer:
    """A trimmer with no retention window: only the groups and the archive hold entries."""
    return trimmer_of(without_retention(settings), redis, pool)


async def fill(redis: Redis, stream: str, n: int = ENTRIES, *, start_ms: int | None = None) -> list[str]:
    """Append ``n`` entries (at ``start_ms`` + i when given, else now); their ids."""
    async with redis.pipeline(transaction=False) as pipe:
        for i in range(n):
            pipe.xadd(stream, {"i": str(i)}, id="*" if start_ms is None else f"{start_ms + i}-0")
        ids: list[str] = await pipe.execute()
    return ids


async def consume(redis: Redis, stream: str, group: str, *, unacked: int | None = None) -> list[str]:
    """Deliver every entry of ``stream`` to ``group`` and acknowledge all of them but the
    one at index ``unacked``; their ids."""
    answer = await redis.xreadgroup(group, "consumer-1", {stream: ">"}, count=10 * ENTRIES)
    delivered = [entry_id for entry_id, _ in answer[0][1]]
    await redis.xack(stream, group, *[e for i, e in enumerate(delivered) if i != unacked])
    return delivered


async def set_checkpoint(pool: asyncpg.Pool, entry_id: str) -> None:
    ms, seq = entry_id.split("-")
    await pool.execute(
        "INSERT INTO projection_checkpoints (projection, partition, last_ms, last_seq) VALUES ('main', 0, $1, $2) "
        "ON CONFLICT (projection, partition) DO UPDATE SET last_ms = $1, last_seq = $2",
        int(ms),
        int(seq),
    )


async def keeps_all_from(redis: Redis, stream: str, entry_id: str) -> bool:
    """``entry_id`` and everything after it are still in ``stream``."""
    first = (await redis.xrange(stream, count=1))[0][0]
    still_there = bool(await redis.xrange(stream, min=entry_id, max=entry_id))
    return still_there and _as_tuple(first) <= _as_tuple(entry_id)


def _as_tuple(entry_id: str) -> tuple[int, int]:
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)


async def test_a_dispatch_entry_delivered_and_not_acked_survives(
    keyspace: Keyspace, trimmer: Trimmer, redis: Redis
) -> None:
    stream = keyspace.dispatch(0, "medium")
    await fill(redis, stream)
    in_flight = (await consume(redis, stream, WORKERS_GROUP, unacked=350))[350]  # a worker still runs it

    trimmed = await trimmer.trim([0])

    assert trimmed.dispatch > 0  # the acknowledged entries before it went...
    assert await keeps_all_from(redis, stream, in_flight)  # ...the pending one stayed


async def test_an_event_the_projector_has_not_acked_survives(
    keyspace: Keyspace, trimmer: Trimmer, redis: Redis, pool: asyncpg.Pool
) -> None:
    stream = keyspace.events(0)
    ids = await fill(redis, stream)
    unacked = (await consume(redis, stream, PROJECTOR_GROUP, unacked=350))[350]
    await set_checkpoint(pool, ids[-1])  # archived: only the pending entry holds the trim

    assert (await trimmer.trim([0])).events > 0
    assert await keeps_all_from(redis, stream, unacked)


async def test_events_above_the_archive_checkpoint_stay_even_when_the_projector_acked_them(
    keyspace: Keyspace, trimmer: Trimmer, redis: Redis, pool: asyncpg.Pool
) -> None:
    stream = keyspace.events(0)
    ids = await fill(redis, stream)
    await consume(redis, stream, PROJECTOR_GROUP)
    await set_checkpoint(pool, ids[250])  # PostgreSQL holds only up to here

    assert (await trimmer.trim([0])).events > 0
    assert await keeps_all_from(redis, stream, ids[251])


async def test_an_event_stream_without_a_checkpoint_row_is_not_trimmed(
    keyspace: Keyspace, trimmer: Trimmer, redis: Redis
) -> None:
    stream = keyspace.events(0)
    await fill(redis, stream)
    await consume(redis, stream, PROJECTOR_GROUP)

    assert await trimmer.trim([0]) == Trimmed()
    assert await redis.xlen(stream) == ENTRIES


async def test_a_stream_without_its_group_is_not_trimmed(settings: Settings, trimmer: Trimmer, redis: Redis) -> None:
    stream = Keyspace.of(settings).dispatch(0, "low")
    await fill(redis, stream)  # no ensure_groups: nobody has read anything

    assert await trimmer.trim([0]) == Trimmed()
    assert await redis.xlen(stream) == ENTRIES


async def test_acked_and_archived_entries_older_than_the_retention_window_go(
    settings: Settings, keyspace: Keyspace, redis: Redis, pool: asyncpg.Pool
) -> None:
    settings = msgspec.structs.replace(settings, stream_retention_seconds=600)
    stream = keyspace.events(0)
    seconds, _ = await redis.time()
    hour_ago_ms = (seconds - 3600) * 1000
    old = await fill(redis, stream, start_ms=hour_ago_ms)
    recent = await fill(redis, stream)
    await consume(redis, stream, PROJECTOR_GROUP)
    await set_checkpoint(pool, recent[-1])

    trimmed = await trimmer_of(settings, redis, pool).trim([0])

    assert trimmed.events >= len(old) - 100  # all old nodes but the one the window starts in
    remaining = [entry_id for entry_id, _ in await redis.xrange(stream)]
    assert remaining[-len(recent) :] == recent  # the last ten minutes are all there


async def test_without_postgres_only_the_dispatch_streams_are_trimmed_and_it_is_logged_once(
    settings: Settings, keyspace: Keyspace, redis: Redis
) -> None:
    events, dispatch = keyspace.events(0), keyspace.dispatch(0, "high")
    for stream, group in ((events, PROJECTOR_GROUP), (dispatch, WORKERS_GROUP)):
        await fill(redis, stream)
        await consume(redis, stream, group)
    away = await asyncpg.create_pool("postgresql://postgres@127.0.0.1:1/none", min_size=0, max_size=1)
    try:
        trimmer = trimmer_of(without_retention(settings), redis, away)
        with capture_logs() as logs:
            first, second = await trimmer.trim([0]), await trimmer.trim([0])
    finally:
        await away.close()

    assert first.events == second.events == 0 and first.dispatch > 0
    assert await redis.xlen(events) == ENTRIES
    assert [e["dependency"] for e in logs if e["event"] == "dependency_unavailable"] == ["postgres"]


async def test_with_trimming_the_event_stream_stays_bounded_through_a_long_run(
    settings: Settings, keyspace: Keyspace, redis: Redis, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """9,000 events through submit, worker, projector and coordinator (the benchmark,
    bench/stream_memory.py, runs 200,000): the event stream never holds more than a part
    of them, ends near empty, and the archive holds every one. A trim pass every second
    instead of every 5 s, so a short run sees several."""
    monkeypatch.setattr(trimmer_module, "TRIM_EVERY_S", 1.0)
    settings = without_retention(settings)
    stream = keyspace.events(0)
    tasks = 3_000  # 3 events each (submitted, started, succeeded)
    longest = 0

    async def watch() -> None:
        nonlocal longest
        while True:
            longest = max(longest, int(await redis.xlen(stream)))
            await asyncio.sleep(0.2)

    async with (
        running_coordinator(settings, redis, pool),
        running_projector(settings, redis, pool),
        running_worker(settings, redis, concurrency=50),
    ):
        watching = asyncio.create_task(watch())
        started = time.monotonic()
        # ~1,200 events/s for ~7.5 s: several trim passes during the run.
        await submit_steadily(redis, keyspace, tasks, per_second=400)

        async def all_archived() -> bool:
            done = await pool.fetchval("SELECT count(*) FROM tasks WHERE status = 'COMPLETED'")
            return bool(done == tasks)

        await eventually(all_archived, timeout_s=60, interval_s=0.2)
        archived = await pool.fetchval("SELECT count(*) FROM event_archive")

        async def trimmed_to_the_tail() -> bool:
            return int(await redis.xlen(stream)) < 500

        await eventually(trimmed_to_the_tail, timeout_s=15, interval_s=0.2)
        watching.cancel()
    assert archived >= 3 * tasks  # every event reached PostgreSQL: none trimmed before it was
    assert longest < archived / 2, (longest, archived, time.monotonic() - started)


async def submit_steadily(redis: Redis, keyspace: Keyspace, n: int, *, per_second: int) -> None:
    """Submit ``n`` echo tasks through the real submit script at about ``per_second``."""
    submitter = Submitter(redis, keyspace)
    batch = per_second // 10
    for start in range(0, n, batch):
        tick = time.monotonic()
        await asyncio.gather(
            *(
                submitter.submit(_echo(), fingerprint="trim", marker_ttl_seconds=60)
                for _ in range(min(batch, n - start))
            )
        )
        await asyncio.sleep(max(0.0, 0.1 - (time.monotonic() - tick)))


def _echo() -> TaskSubmitted:
    return TaskSubmitted(
        aggregate_id=str(uuid.uuid4()),
        occurred_at=datetime.now(UTC),
        correlation_id=uuid.uuid4().hex,
        actor="tester",
        task_name="echo",
    )
