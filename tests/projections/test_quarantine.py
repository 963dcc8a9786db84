"""An event the projector cannot project never stops it (ADR 0014): it is kept whole in
``quarantined_entries``, with its stream id and error, and the events after it are
projected as usual. Real Redis and PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from uuid import uuid4

import asyncpg
import msgspec
from redis.asyncio import Redis
from structlog.testing import capture_logs

from taskflow.events import WorkerStarted, encode, tag_of
from taskflow.settings import Settings
from taskflow.streams.groups import ensure_groups
from taskflow.streams.keyspace import PROJECTOR_GROUP, Keyspace
from tests.support.stack import running_projector, submit, submitted
from tests.support.waiting import eventually

NUL_KWARGS = b'{"s":"a\\u0000b"}'


async def _append_raw(redis: Redis, settings: Settings, event_type: str, payload: bytes) -> str:
    """An entry appended by hand, as a buggy or hostile writer would."""
    await ensure_groups(redis, Keyspace.of(settings))
    return str(await redis.xadd(Keyspace.of(settings).events(0), {"type": event_type, "data": payload}))


def _with_nul_kwargs(task_id: str) -> bytes:
    """A TaskSubmitted PostgreSQL refuses: its kwargs hold \\u0000, which jsonb cannot hold."""
    event = submitted("echo", task_id=task_id)
    return encode(msgspec.structs.replace(event, kwargs=msgspec.Raw(NUL_KWARGS)))


async def _projected(pool: asyncpg.Pool, task_ids: list[str]) -> bool:
    count = await pool.fetchval("SELECT count(*) FROM tasks WHERE task_id = ANY($1::uuid[])", task_ids)
    return int(count) == len(task_ids)


async def _checkpoint(pool: asyncpg.Pool) -> tuple[int, int]:
    row = await pool.fetchrow("SELECT last_ms, last_seq FROM projection_checkpoints WHERE partition = 0")
    return (0, 0) if row is None else (int(row["last_ms"]), int(row["last_seq"]))


def _id(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq)


async def test_an_event_postgresql_refuses_is_quarantined_and_the_projector_goes_on(
    redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    before = [submitted("echo", i=i) for i in range(5)]
    for event in before:
        await submit(redis, settings, event)
    poison_payload = _with_nul_kwargs(str(uuid4()))
    poison_id = await _append_raw(redis, settings, "task.submitted", poison_payload)
    after = [submitted("echo", i=i) for i in range(5)]
    for event in after:
        await submit(redis, settings, event)
    async with running_projector(settings, redis, pool) as projector:
        await eventually(lambda: _projected(pool, [e.aggregate_id for e in before + after]))
        last_id = (await redis.xrevrange(Keyspace.of(settings).events(0), count=1))[0][0]
        await eventually(lambda: _caught_up(pool, last_id))
        rows = await pool.fetch("SELECT * FROM quarantined_entries")
        assert len(rows) == 1
        row = rows[0]
        assert row["entry_id"] == poison_id and row["stream"] == Keyspace.of(settings).events(0)
        assert bytes(row["raw"]) == poison_payload  # kept whole, byte for byte
        assert row["source"] == "projector" and row["event_type"] == "task.submitted"
        assert "refused by PostgreSQL" in row["error"] and "\\u0000" in row["error"]
        # Not archived (the quarantine holds it), and nothing else is missing.
        assert await pool.fetchval("SELECT count(*) FROM event_archive WHERE event_id = $1", poison_id) == 0
        assert await pool.fetchval("SELECT count(*) FROM event_archive") == 10
        # Still running: a task submitted now is projected too.
        late = submitted("echo")
        await submit(redis, settings, late)
        await eventually(lambda: _projected(pool, [late.aggregate_id]))
        assert not projector_stopped(projector)
    pending = await redis.xpending(Keyspace.of(settings).events(0), PROJECTOR_GROUP)
    assert pending["pending"] == 0  # every entry acked, the poison one included


def projector_stopped(projector: object) -> bool:
    return bool(projector._stopping.is_set())  # type: ignore[attr-defined]


async def _caught_up(pool: asyncpg.Pool, last_id: str) -> bool:
    return await _checkpoint(pool) >= _id(last_id)


async def test_a_restarted_projector_does_not_quarantine_twice(
    redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    poison_id = await _append_raw(redis, settings, "task.submitted", _with_nul_kwargs(str(uuid4())))
    good = submitted("echo")
    await submit(redis, settings, good)
    for _ in range(2):
        async with running_projector(settings, redis, pool):
            await eventually(lambda: _projected(pool, [good.aggregate_id]))
    assert await pool.fetchval("SELECT count(*) FROM quarantined_entries WHERE entry_id = $1", poison_id) == 1


async def test_an_undecodable_event_is_quarantined_not_dropped(
    redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    garbage_id = await _append_raw(redis, settings, "task.submitted", b"{not json at all")
    unknown_id = await _append_raw(redis, settings, "task.renamed", b'{"type":"task.renamed","x":1}')
    good = submitted("echo")
    await submit(redis, settings, good)
    async with running_projector(settings, redis, pool):
        await eventually(lambda: _projected(pool, [good.aggregate_id]))
    rows = {r["entry_id"]: r for r in await pool.fetch("SELECT * FROM quarantined_entries")}
    assert set(rows) == {garbage_id, unknown_id}
    assert bytes(rows[garbage_id]["raw"]) == b"{not json at all"
    assert rows[garbage_id]["error"].startswith("undecodable")
    assert rows[unknown_id]["event_type"] == "task.renamed"


async def test_an_entry_that_is_not_utf8_is_quarantined_byte_for_byte(
    redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    """redis-py would fail every read of the stream on such an entry, not just this one."""
    raw = b'{"type":"task.submitted","s":"\xff\xfe"}'
    bad_id = await _append_raw(redis, settings, "task.submitted", raw)
    nameless_id = str(await redis.xadd(Keyspace.of(settings).events(0), {b"\xff": b"\xfe"}))
    good = submitted("echo")
    await submit(redis, settings, good)
    async with running_projector(settings, redis, pool):
        await eventually(lambda: _projected(pool, [good.aggregate_id]))
    rows = {r["entry_id"]: r for r in await pool.fetch("SELECT entry_id, raw FROM quarantined_entries")}
    assert bytes(rows[bad_id]["raw"]) == raw
    assert msgspec.json.decode(bytes(rows[nameless_id]["raw"])) == {"\\xff": "\\xfe"}


async def test_an_event_a_fold_fails_on_is_quarantined_with_the_rest_of_its_batch_projected(
    redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    # Decodes, but its aggregate id is no UUID: the worker fold raises on it.
    bad = WorkerStarted(
        aggregate_id="not-a-uuid",
        occurred_at=datetime.now(UTC),
        correlation_id="c",
        hostname="h",
        pid=1,
        capacity=1,
        queues=("medium",),
        version="0",
    )
    bad_id = await _append_raw(redis, settings, tag_of(bad), encode(bad))
    good = submitted("echo")
    await submit(redis, settings, good)
    async with running_projector(settings, redis, pool):
        await eventually(lambda: _projected(pool, [good.aggregate_id]))
    row = await pool.fetchrow("SELECT * FROM quarantined_entries")
    assert row is not None and row["entry_id"] == bad_id and row["error"].startswith("fold failed")
    assert row["aggregate_id"] == "not-a-uuid"


async def test_an_entry_whose_id_does_not_fit_the_archive_is_quarantined(
    redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    """A 33-character stream id (seq 10^18, appended by hand): too long for the archive's
    event_id, kept whole in the quarantine."""
    await ensure_groups(redis, Keyspace.of(settings))
    stream = Keyspace.of(settings).events(0)
    odd = submitted("echo")
    # A millisecond in the past: an auto id made in the same millisecond as the odd one
    # would follow it (seq 10^18 + 1) and be too long as well.
    odd_id = f"{int(time.time() * 1000) - 1000}-1000000000000000000"
    await redis.xadd(stream, {"type": "task.submitted", "data": encode(odd)}, id=odd_id)
    good = submitted("echo")
    await submit(redis, settings, good)
    async with running_projector(settings, redis, pool):
        await eventually(lambda: _projected(pool, [good.aggregate_id]))
    row = await pool.fetchrow("SELECT entry_id, id_seq, error FROM quarantined_entries")
    assert row is not None and (row["entry_id"], row["id_seq"]) == (odd_id, 10**18)


async def test_an_entry_no_checkpoint_can_hold_leaves_the_projector_stuck_but_alive(
    redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    """A stream id above 2^63 cannot be checkpointed (the columns are signed): nothing
    after it can be projected, so the projector says so, loudly, and keeps trying instead
    of dying or skipping it."""
    good = submitted("echo")
    await submit(redis, settings, good)
    stream = Keyspace.of(settings).events(0)
    with capture_logs() as logs:
        async with running_projector(settings, redis, pool) as projector:
            await eventually(lambda: _projected(pool, [good.aggregate_id]))
            await redis.xadd(stream, {"type": "task.submitted", "data": encode(submitted("echo"))}, id=f"{2**63}-0")
            # Tried again after its pause, and still there: stuck, not dead.
            await eventually(lambda: _logged(logs, "projector_partition_stuck", times=2))
            assert not projector_stopped(projector)
    retries = [entry["retry_in_s"] for entry in logs if entry["event"] == "projector_partition_stuck"]
    assert retries[:2] == [1.0, 2.0]  # backing off, not spinning


async def _logged(logs: list[dict[str, object]], name: str, times: int = 1) -> bool:
    return sum(entry["event"] == name for entry in logs) >= times
