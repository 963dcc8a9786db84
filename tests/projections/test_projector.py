"""The projector against real Redis and PostgreSQL: invariant 4 (exactly-once effects),
invariant 6 (per-aggregate order, one consumer per partition)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import asyncpg
import msgspec
import pytest
from redis.asyncio import Redis

from taskflow.events import TaskDeadLettered, TaskFailed, TaskQueued, TaskSucceeded, encode, tag_of
from taskflow.projections import partition_reader
from taskflow.projections import projector as projector_module
from taskflow.projections.commit import apply_batch
from taskflow.projections.partition_reader import BATCH_SIZE, GATHER_BELOW, gather_first
from taskflow.projections.projector import Projector
from taskflow.projections.reading import parse_batch
from taskflow.projections.scripts import LockLost, ProjectorScripts
from taskflow.projections.store import FencedOut, raise_fence
from taskflow.settings import Settings
from taskflow.streams.groups import ensure_groups
from taskflow.streams.keyspace import PROJECTOR_GROUP, Keyspace, partition_of
from tests.support.stack import all_events, running_projector, running_worker, submit, submitted
from tests.support.waiting import eventually

TABLES = ("tasks", "task_results", "task_executions", "workers", "dead_letter_queue", "event_archive")


async def _count(pool: asyncpg.Pool, sql: str, *args: object) -> int:
    return int(await pool.fetchval(sql, *args))


async def _dump(pool: asyncpg.Pool) -> dict[str, list[tuple[object, ...]]]:
    """Every projected row, minus bookkeeping columns that say when we archived."""
    out = {}
    for table in TABLES:
        rows = await pool.fetch(f"SELECT * FROM {table}")
        out[table] = sorted(tuple(v for k, v in r.items() if k != "archived_at") for r in rows)
    return out


async def _run_tasks(redis: Redis, settings: Settings, n: int) -> list[str]:
    ids = []
    for i in range(n):
        event = submitted("echo" if i % 3 else "fail", **({"i": i} if i % 3 else {"message": f"m{i}"}))
        await submit(redis, settings, event)
        ids.append(event.aggregate_id)
    async with running_worker(settings, redis):
        await eventually(lambda: _finished(redis, settings, n))
    return ids


async def _finished(redis: Redis, settings: Settings, n: int) -> bool:
    return sum(isinstance(e, TaskSucceeded | TaskFailed) for e in await all_events(redis, settings)) >= n


async def _projected_everything(redis: Redis, settings: Settings, pool: asyncpg.Pool) -> bool:
    total = await redis.xlen(Keyspace.of(settings).events(0))
    return await _count(pool, "SELECT count(*) FROM event_archive") == total


async def test_projection_builds_rows_archive_and_checkpoint(
    redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    ids = await _run_tasks(redis, settings, 9)
    async with running_projector(settings, redis, pool):
        await eventually(lambda: _projected_everything(redis, settings, pool))
    statuses = dict(await pool.fetch("SELECT task_id::text, status FROM tasks"))
    assert statuses == {t: ("FAILED" if i % 3 == 0 else "COMPLETED") for i, t in enumerate(ids)}
    assert await _count(pool, "SELECT count(*) FROM task_results") == 9
    assert (
        await _count(
            pool, "SELECT count(*) FROM task_executions WHERE completed_at IS NOT NULL AND started_at IS NOT NULL"
        )
        == 9
    )
    assert await _count(pool, "SELECT count(*) FROM workers WHERE status = 'STOPPED'") == 1
    last_id = (await redis.xrevrange(Keyspace.of(settings).events(0), count=1))[0][0]
    checkpoint = await pool.fetchrow("SELECT last_ms, last_seq FROM projection_checkpoints WHERE partition = 0")
    assert f"{checkpoint['last_ms']}-{checkpoint['last_seq']}" == last_id
    pending = await redis.xpending(Keyspace.of(settings).events(0), PROJECTOR_GROUP)
    assert pending["pending"] == 0


async def test_a_crash_between_commit_and_xack_leaves_no_duplicate(
    redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    await _run_tasks(redis, settings, 4)
    await ensure_groups(redis, Keyspace.of(settings))
    stream = Keyspace.of(settings).events(0)
    # The first projector reads and COMMITs, then dies before its XACK.
    answer = await redis.xreadgroup(PROJECTOR_GROUP, "projector-0", {stream: ">"}, count=1000)
    fence = await redis.incr(Keyspace.of(settings).projector_fence(0))
    applied = await apply_batch(pool, 0, parse_batch(0, "events", answer[0][1]), fence)
    assert applied == await redis.xlen(stream)
    before = await _dump(pool)
    assert (await redis.xpending(stream, PROJECTOR_GROUP))["pending"] == applied
    # Its successor re-reads the unacknowledged entries first, skips them, and acks.
    async with running_projector(settings, redis, pool):
        await eventually(lambda: _no_pending(redis, stream))
    assert await _dump(pool) == before
    duplicates = await _count(pool, "SELECT count(*) - count(DISTINCT (partition, event_id)) FROM event_archive")
    assert duplicates == 0


async def _no_pending(redis: Redis, stream: str) -> bool:
    return (await redis.xpending(stream, PROJECTOR_GROUP))["pending"] == 0


async def test_redelivered_events_at_or_below_the_checkpoint_are_skipped(
    redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    await _run_tasks(redis, settings, 2)
    entries = await redis.xrange(Keyspace.of(settings).events(0))
    assert await apply_batch(pool, 0, parse_batch(0, "events", entries), 1) == len(entries)
    assert await apply_batch(pool, 0, parse_batch(0, "events", entries), 1) == 0
    assert await apply_batch(pool, 0, parse_batch(0, "events", entries[:1]), 1) == 0
    assert await _count(pool, "SELECT count(*) FROM event_archive") == len(entries)


async def test_rows_are_the_same_whether_built_in_one_batch_or_one_event_at_a_time(
    redis: Redis, settings: Settings, pool: asyncpg.Pool, database_url: str
) -> None:
    """Invariant 4: projections converge however the events arrive."""
    await _run_tasks(redis, settings, 6)
    entries = await redis.xrange(Keyspace.of(settings).events(0))
    await apply_batch(pool, 0, parse_batch(0, "events", entries), 1)
    whole = await _dump(pool)
    for table in (*TABLES, "projection_checkpoints"):
        await pool.execute(f"TRUNCATE {table} CASCADE")
    for entry in entries:
        await apply_batch(pool, 0, parse_batch(0, "events", [entry]), 1)
    assert await _dump(pool) == whole


async def test_the_pipelined_projector_builds_the_same_rows_as_one_transaction(
    redis: Redis, settings: Settings, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Projector folds a batch while the previous one commits, on rows it keeps in a
    RowCache. With batches of 3 events and room for 12 rows (4 batches), tasks leave the
    cache and are read back from PostgreSQL many times; the rows must still be exactly
    those of one transaction over the whole log."""
    monkeypatch.setattr(partition_reader, "BATCH_SIZE", 3)
    monkeypatch.setattr(projector_module, "CACHED_ROWS", 12)
    await _run_tasks(redis, settings, 30)
    async with running_projector(settings, redis, pool):
        await eventually(lambda: _projected_everything(redis, settings, pool))
    pipelined = await _dump(pool)
    for table in (*TABLES, "projection_checkpoints"):
        await pool.execute(f"TRUNCATE {table} CASCADE")
    entries = await redis.xrange(Keyspace.of(settings).events(0))
    await apply_batch(pool, 0, parse_batch(0, "events", entries), 1)
    assert await _dump(pool) == pipelined


async def test_events_of_one_task_stay_in_one_partition_in_stream_order(
    redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    """Invariant 6 with four partitions: one stream per aggregate, applied in order."""
    settings = msgspec.structs.replace(settings, partitions=4)
    ids = await _run_tasks(redis, settings, 12)
    for task_id in ids:
        home = partition_of(task_id, 4)
        for p in range(4):
            mine = [f for _, f in await redis.xrange(Keyspace.of(settings).events(p)) if task_id in f["data"]]
            assert bool(mine) == (p == home)
    async with running_projector(settings, redis, pool):
        await eventually(lambda: _all_partitions_projected(redis, settings, pool))
    assert await _count(pool, "SELECT count(*) FROM tasks WHERE status IN ('COMPLETED', 'FAILED')") == 12
    assert len({partition_of(t, 4) for t in ids}) > 1


async def _all_partitions_projected(redis: Redis, settings: Settings, pool: asyncpg.Pool) -> bool:
    total = sum([await redis.xlen(Keyspace.of(settings).events(p)) for p in range(settings.partitions)])
    return await _count(pool, "SELECT count(*) FROM event_archive") == total


async def test_two_projectors_never_project_one_partition_at_once(
    redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    await _run_tasks(redis, settings, 10)
    first, second = Projector(settings, redis, pool), Projector(settings, redis, pool)
    runs = [asyncio.create_task(first.run()), asyncio.create_task(second.run())]
    try:
        await eventually(lambda: _projected_everything(redis, settings, pool))
    finally:
        first.stop()
        second.stop()
        await asyncio.gather(*runs)
    assert sorted([first.applied, second.applied]) == [0, await redis.xlen(Keyspace.of(settings).events(0))]


async def test_a_projector_with_a_stale_fencing_token_cannot_commit(
    redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    """A projector paused past its lock (e.g. SIGSTOP) wakes up holding a batch; its
    successor has committed with a newer token, so the stale write is refused whole."""
    await _run_tasks(redis, settings, 3)
    entries = await redis.xrange(Keyspace.of(settings).events(0))
    early, late = entries[: len(entries) // 2], entries[len(entries) // 2 :]
    await apply_batch(pool, 0, parse_batch(0, "events", late), 2)  # the successor, token 2
    before = await _dump(pool)
    with pytest.raises(FencedOut):
        await apply_batch(pool, 0, parse_batch(0, "events", early), 1)  # the sleeper, token 1
    assert await _dump(pool) == before


async def test_a_projector_that_lost_its_lock_cannot_take_entries(redis: Redis, settings: Settings) -> None:
    """The read and the lock check are one step: a paused projector that wakes after its
    lock moved on gets nothing from the group, so nothing is left pending under it."""
    await _run_tasks(redis, settings, 1)
    await ensure_groups(redis, Keyspace.of(settings))
    lock = Keyspace.of(settings).projector_lock(0)
    await redis.set(lock, "successor-token")
    with pytest.raises(LockLost):
        await ProjectorScripts(redis, Keyspace.of(settings)).projector_read(
            partition=0,
            token="sleeper-token",
            consumer="projector-0",
            count=100,
            start_id=">",
        )
    assert (await redis.xpending(Keyspace.of(settings).events(0), PROJECTOR_GROUP))["pending"] == 0


async def test_a_new_projector_fences_out_its_predecessor_before_committing_anything(
    redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    await _run_tasks(redis, settings, 2)
    entries = await redis.xrange(Keyspace.of(settings).events(0))
    await raise_fence(pool, 0, 2)  # the successor took the lock; it has committed nothing yet
    with pytest.raises(FencedOut):
        await apply_batch(pool, 0, parse_batch(0, "events", entries), 1)
    assert await _count(pool, "SELECT count(*) FROM event_archive") == 0


async def test_a_requeue_closes_only_the_dead_letters_before_it_however_the_batches_fall(
    redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    """Dead-lettered, requeued, dead-lettered again: the first row is closed (requeued_at),
    the second stays open, whether the events come in one batch or one at a time."""
    task_id = str(uuid4())
    when = datetime(2026, 3, 1, tzinfo=UTC)

    def envelope(n: int) -> dict[str, Any]:
        return {"aggregate_id": task_id, "occurred_at": when + timedelta(seconds=n), "correlation_id": "c"}

    events = [
        msgspec.structs.replace(submitted("echo", task_id=task_id), occurred_at=when),
        TaskDeadLettered(**envelope(1), reason="poison", deliveries=3),
        TaskQueued(**envelope(2), reason="requeued"),
        TaskDeadLettered(**envelope(3), reason="poison again", deliveries=3),
    ]
    stream = Keyspace.of(settings).events(0)
    entries = [(await redis.xadd(stream, {"type": tag_of(e), "data": encode(e)}), e) for e in events]
    raw = await redis.xrange(stream)
    assert len(raw) == len(entries)

    async def dead_letters() -> list[tuple[str, datetime | None]]:
        rows = await pool.fetch("SELECT failure_reason, requeued_at FROM dead_letter_queue ORDER BY moved_at")
        return [(r["failure_reason"], r["requeued_at"]) for r in rows]

    await apply_batch(pool, 0, parse_batch(0, "events", raw), 1)
    whole = await dead_letters()
    assert whole == [("poison", when + timedelta(seconds=2)), ("poison again", None)]
    for table in (*TABLES, "projection_checkpoints"):
        await pool.execute(f"TRUNCATE {table} CASCADE")
    for entry in raw:
        await apply_batch(pool, 0, parse_batch(0, "events", [entry]), 1)
    assert await dead_letters() == whole


async def test_the_projector_rides_out_postgresql_dropping_its_connections(
    redis: Redis, settings: Settings, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PostgreSQL restart or failover ends the projector's sessions (AdminShutdown,
    closed connections) mid-batch: it waits and retries, and every event still lands once."""
    monkeypatch.setattr(partition_reader, "BATCH_SIZE", 5)
    monkeypatch.setattr(projector_module, "RETRY_DELAY_S", 0.05)
    monkeypatch.setattr(partition_reader, "RETRY_DELAY_S", 0.05)
    await _run_tasks(redis, settings, 40)
    victim = "tf-projector-under-test"
    projector_pool = await asyncpg.create_pool(
        settings.database_url, min_size=1, max_size=4, server_settings={"application_name": victim}
    )
    killed = 0
    try:
        async with running_projector(settings, redis, projector_pool):
            for _ in range(20):
                killed += await _count(
                    pool,
                    "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = $1) AS t",
                    victim,
                )
                await asyncio.sleep(0.02)
            await eventually(lambda: _projected_everything(redis, settings, pool))
    finally:
        await projector_pool.close()
    assert killed > 0
    duplicates = await _count(pool, "SELECT count(*) - count(DISTINCT (partition, event_id)) FROM event_archive")
    assert duplicates == 0
    statuses = await pool.fetch("SELECT status, count(*) FROM tasks GROUP BY status ORDER BY status")
    assert {r["status"]: r["count"] for r in statuses} == {"COMPLETED": 26, "FAILED": 14}


def test_a_batch_splits_into_older_and_newer_halves_keeping_every_entry() -> None:
    good = [(f"{i}-0", {"type": "task.submitted", "data": encode(submitted("echo")).decode()}) for i in (1, 2, 4, 5)]
    entries = [*good[:2], ("3-0", {"type": "x", "data": "{"}), *good[2:]]
    batch = parse_batch(0, "events", entries)
    assert batch.size == 5 and [q.entry_id for q in batch.undecodable] == ["3-0"]
    older, newer = batch.split()
    assert older.entry_ids == ["1-0", "2-0"] and [r.event_id for r in older.records] == ["1-0", "2-0"]
    assert newer.entry_ids == ["3-0", "4-0", "5-0"] and [q.entry_id for q in newer.undecodable] == ["3-0"]
    assert [e.event_id for e in newer.events] == ["4-0", "5-0"] and newer.last == (5, 0)
    single = older.split()[0]
    (refused,) = single.refused("boom").undecodable
    assert (refused.entry_id, refused.source, refused.error, refused.raw) == (
        "1-0",
        "projector",
        "boom",
        good[0][1]["data"].encode(),
    )


@pytest.mark.parametrize(
    ("last_read", "gather"),
    [
        (0, False),  # idle: the next event is read the moment it comes
        (1, True),  # a steady flow in small batches: let the next batch gather
        (GATHER_BELOW - 1, True),
        (GATHER_BELOW, False),  # big enough: a pause would only add lag
        (BATCH_SIZE, False),  # behind: read on at once
    ],
)
def test_a_read_pauses_to_gather_entries_only_after_a_small_batch(last_read: int, gather: bool) -> None:
    assert gather_first(last_read) is gather
