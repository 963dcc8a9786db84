"""What workers append never poisons the projector, and a dispatch entry a worker cannot
read is kept, visible and recoverable, never silently dropped (ADR 0014). Real Redis and
PostgreSQL, a real worker and projector."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import msgspec
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from taskflow.events import DispatchRejected
from taskflow.gateway.app import create_app
from taskflow.gateway.auth import issue_token
from taskflow.settings import Settings
from taskflow.streams.keyspace import WORKERS_GROUP, Keyspace
from tests.support.stack import all_events, running_projector, running_worker, submit, submitted
from tests.support.waiting import eventually


@asynccontextmanager
async def _stack(settings: Settings, redis: Redis, pool: asyncpg.Pool) -> AsyncIterator[None]:
    async with running_projector(settings, redis, pool), running_worker(settings, redis):
        yield


async def _status(pool: asyncpg.Pool, task_id: str) -> str | None:
    status = await pool.fetchval("SELECT status FROM tasks WHERE task_id = $1::uuid", task_id)
    return None if status is None else str(status)


async def _status_is(pool: asyncpg.Pool, task_id: str, wanted: str) -> bool:
    return await _status(pool, task_id) == wanted


async def _replace_dispatch_entry(redis: Redis, settings: Settings, fields: dict[str, str]) -> str:
    """Drop the good dispatch entry of the stream and append ``fields`` instead, as a buggy
    producer or a damaged stream would leave it."""
    stream = Keyspace.of(settings).dispatch(0, "medium")
    for entry_id, _ in await redis.xrange(stream):
        await redis.xdel(stream, entry_id)
    return str(await redis.xadd(stream, fields))


async def test_an_undecodable_dispatch_entry_is_quarantined_and_its_task_fails_then_retries(
    redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    event = submitted("echo", x=1)
    event_id = await submit(redis, settings, event)
    task_id = event.aggregate_id
    broken = {
        "task_id": task_id,
        "event_id": event_id,
        "event": '{"type": "task.submitted", "trunc',
        "retry_count": "0",
    }
    entry_id = await _replace_dispatch_entry(redis, settings, broken)
    stream = Keyspace.of(settings).dispatch(0, "medium")
    async with _stack(settings, redis, pool):
        await eventually(lambda: _status_is(pool, task_id, "FAILED"))
        row = await pool.fetchrow("SELECT * FROM quarantined_entries")
        assert row is not None and row["source"] == "worker"
        assert (row["stream"], row["entry_id"], row["aggregate_id"]) == (stream, entry_id, task_id)
        assert msgspec.json.decode(bytes(row["raw"])) == broken  # the entry, whole
        reason = await pool.fetchval("SELECT failure_reason FROM dead_letter_queue WHERE task_id = $1::uuid", task_id)
        assert entry_id in reason and "could not be read" in reason
        # Off its stream, acknowledged: nothing loops on it.
        assert await redis.xlen(stream) == 0
        assert (await redis.xpending(stream, WORKERS_GROUP))["pending"] == 0
        rejected = [e for e in await all_events(redis, settings) if isinstance(e, DispatchRejected)]
        assert [(e.entry_id, e.fields) for e in rejected] == [(entry_id, broken)]
        # The task's own submission was intact: a retry runs it.
        headers = {"Authorization": f"Bearer {issue_token(settings.jwt_secret, 'tester', 'admin')}"}
        async with AsyncTestClient(app=create_app(settings)) as client:
            retried = await client.post(f"/api/v1/tasks/{task_id}/retry", headers=headers)
            assert retried.status_code == 202, retried.text
        await eventually(lambda: _status_is(pool, task_id, "COMPLETED"))


async def test_a_dispatch_entry_naming_no_task_is_quarantined_and_the_worker_goes_on(
    redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    junk = {"hello": "world"}
    entry_id = await _replace_dispatch_entry(redis, settings, junk)
    good = submitted("echo")
    await submit(redis, settings, good)
    async with _stack(settings, redis, pool):
        await eventually(lambda: _status_is(pool, good.aggregate_id, "COMPLETED"))
        row = await eventually(lambda: pool.fetchrow("SELECT * FROM quarantined_entries"))
    assert row["entry_id"] == entry_id and row["aggregate_id"] is None
    assert msgspec.json.decode(bytes(row["raw"])) == junk
    assert "event_id" in row["error"] or "event" in row["error"]


async def test_a_task_returning_a_nul_fails_and_everything_after_it_is_projected(
    redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    poison = submitted("nul_result")
    after = submitted("echo")
    await submit(redis, settings, poison)
    await submit(redis, settings, after)
    async with _stack(settings, redis, pool):
        await eventually(lambda: _status_is(pool, after.aggregate_id, "COMPLETED"))
        await eventually(lambda: _status_is(pool, poison.aggregate_id, "FAILED"))
    error = await pool.fetchrow(
        "SELECT error_type, error_message FROM task_results WHERE task_id = $1::uuid", poison.aggregate_id
    )
    assert error["error_type"] == "UnstorableResult" and "result.s" in error["error_message"]
    assert await pool.fetchval("SELECT count(*) FROM quarantined_entries") == 0  # refused at the source


async def test_nuls_in_log_lines_progress_and_errors_are_kept_escaped(
    redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    task = submitted("nul_diagnostics")
    await submit(redis, settings, task)
    async with _stack(settings, redis, pool):
        await eventually(lambda: _status_is(pool, task.aggregate_id, "FAILED"))
        log = await eventually(
            lambda: pool.fetchrow("SELECT message, metadata FROM task_logs WHERE task_id = $1::uuid", task.aggregate_id)
        )
    assert log["message"] == "line\\u0000one"
    assert msgspec.json.decode(log["metadata"])["data"] == {"key\\u0000": "v\\u0000"}
    row = await pool.fetchrow(
        "SELECT t.progress_message, r.error_message, r.stack_trace FROM tasks t JOIN task_results r USING (task_id) "
        "WHERE task_id = $1::uuid",
        task.aggregate_id,
    )
    assert row["progress_message"] == "half\\u0000way"
    assert row["error_message"] == "bad\\u0000value" and "bad\\u0000value" in row["stack_trace"]
    assert await pool.fetchval("SELECT count(*) FROM quarantined_entries") == 0


@pytest.mark.parametrize(
    ("fields", "kept"),
    [
        ({"task_id": "x", "event": b"\xff{"}, {"task_id": "x", "event": "\\xff{"}),
        ({"event_id": b"1-\xff", "event": "{}"}, {"event_id": "1-\\xff", "event": "{}"}),
        (
            {"event_id": "1-0", "event": "{}", "retry_count": "many"},
            {"event_id": "1-0", "event": "{}", "retry_count": "many"},
        ),
    ],
    ids=["event-not-utf8", "event-id-not-utf8", "retry-count-not-a-number"],
)
async def test_a_dispatch_entry_with_unreadable_fields_is_rejected_not_fatal(
    redis: Redis, settings: Settings, pool: asyncpg.Pool, fields: dict[str, object], kept: dict[str, str]
) -> None:
    """Read from the stream or reclaimed from a dead worker alike, such an entry never
    stops a worker (nor its recorder): it is taken off and kept."""
    stream = Keyspace.of(settings).dispatch(0, "medium")
    await submit(redis, settings, submitted("echo"))  # creates the groups
    entry_id = await _replace_dispatch_entry(redis, settings, fields)  # type: ignore[arg-type]
    good = submitted("echo")
    await submit(redis, settings, good)
    async with _stack(settings, redis, pool):
        await eventually(lambda: _status_is(pool, good.aggregate_id, "COMPLETED"))
        row = await eventually(lambda: pool.fetchrow("SELECT * FROM quarantined_entries"))
    assert row["entry_id"] == entry_id and row["stream"] == stream
    assert msgspec.json.decode(bytes(row["raw"])) == kept
