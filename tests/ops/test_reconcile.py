"""``taskflow reconcile [--repair]`` after simulated Redis data loss, on real Redis and
PostgreSQL: the command as a process, the projector and worker in the test's loop."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
from redis.asyncio import Redis

from taskflow.dev.redis_server import start_redis
from taskflow.settings import Settings
from taskflow.streams.fields import DECODE_ERRORS
from taskflow.streams.groups import ensure_groups
from taskflow.streams.keyspace import Keyspace
from taskflow.streams.submit import Submitter
from tests.support.processes import env_for, taskflow
from tests.support.stack import events_of, running_projector, running_worker, submit, submitted
from tests.support.waiting import eventually


async def _reconcile(settings: Settings, *args: str, expect: int) -> dict[str, Any]:
    result = await asyncio.to_thread(taskflow, "reconcile", *args, "--json", env=env_for(settings))
    assert result.returncode == expect, result.stdout + result.stderr
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


async def _count(pool: asyncpg.Pool, sql: str, *args: object) -> int:
    return int(await pool.fetchval(sql, *args))


async def _projected(pool: asyncpg.Pool, n: int, status: str) -> bool:
    return await _count(pool, "SELECT count(*) FROM tasks WHERE status = $1", status) == n


async def _entries_of(redis: Redis, ks: Keyspace, task_id: str) -> list[str]:
    return [i for i, f in await redis.xrange(ks.dispatch(0, "medium")) if f["task_id"] == task_id]


async def _accepted_and_projected(redis: Redis, settings: Settings, pool: asyncpg.Pool, n: int) -> list[str]:
    """``n`` echo tasks submitted and projected PENDING; no worker runs them."""
    ids = []
    for _ in range(n):
        event = submitted("echo")
        await submit(redis, settings, event)
        ids.append(event.aggregate_id)
    async with running_projector(settings, redis, pool):
        await eventually(lambda: _projected(pool, n, "PENDING"))
    return ids


async def _lose(redis: Redis, ks: Keyspace, task_ids: list[str]) -> None:
    """What an AOF tail lost in a crash takes: the marker and the dispatch entry (written
    in one script step, so lost together)."""
    for task_id in task_ids:
        await redis.delete(ks.task_marker(task_id))
        for entry_id in await _entries_of(redis, ks, task_id):
            await redis.xdel(ks.dispatch(0, "medium"), entry_id)


async def test_tasks_redis_lost_are_listed_exactly_and_repaired_once(
    redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    ks = Keyspace.of(settings)
    ids = await _accepted_and_projected(redis, settings, pool, 5)
    lost = sorted(ids[1:3])
    await _lose(redis, ks, lost)

    found = await _reconcile(settings, expect=1)
    assert sorted(t["task_id"] for t in found["lost_tasks"]) == lost
    assert {(t["task_name"], t["status"]) for t in found["lost_tasks"]} == {("echo", "PENDING")}
    assert all(t["submitted_at"] for t in found["lost_tasks"])
    assert found["missing_groups"] == [] and found["streams_behind"] == []

    repaired = await _reconcile(settings, "--repair", expect=0)
    assert sorted(r["target"] for r in repaired["repairs"] if r["outcome"] == "repaired") == lost
    again = await _reconcile(settings, "--repair", expect=0)
    assert again["lost_tasks"] == [] and again["repairs"] == []
    for task_id in lost:  # dispatched once, however often --repair ran
        assert len(await _entries_of(redis, ks, task_id)) == 1
        queued = [e for e in await events_of(redis, settings, task_id) if e.__class__.__name__ == "TaskQueued"]
        assert [q.reason for q in queued] == ["requeued"]  # type: ignore[attr-defined]

    async with running_projector(settings, redis, pool), running_worker(settings, redis):
        await eventually(lambda: _projected(pool, 5, "COMPLETED"))
    assert (await _reconcile(settings, expect=0))["lost_tasks"] == []


async def test_an_events_stream_recreated_below_the_checkpoint_is_moved_past_it(
    redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    """Redis replaced by an empty one whose clock is behind the old one's: its ids would
    all be at or below the archive's checkpoint, and the projector would skip them."""
    ks = Keyspace.of(settings)
    await _accepted_and_projected(redis, settings, pool, 2)
    ahead_ms = int(time.time() * 1000) + 3_600_000  # the old Redis stamped ids an hour ahead
    await pool.execute("UPDATE projection_checkpoints SET last_ms = $1, last_seq = 7", ahead_ms)
    await redis.delete(ks.events(0))
    await redis.xadd(ks.events(0), {"type": "x", "data": "{}"}, id="1-1")
    await redis.xdel(ks.events(0), "1-1")

    found = await _reconcile(settings, expect=1)
    assert [(s["stream"], s["move_to"]) for s in found["streams_behind"]] == [("events:0", f"{ahead_ms}-7")]
    assert [(g["stream"], g["group"]) for g in found["missing_groups"]] == [("events:0", "projector")]
    await _reconcile(settings, "--repair", expect=0)
    assert (await _reconcile(settings, expect=0))["streams_behind"] == []

    event = submitted("echo")
    await submit(redis, settings, event)
    async with running_projector(settings, redis, pool):
        await eventually(
            lambda: _count(pool, "SELECT count(*) FROM tasks WHERE task_id = $1::uuid", event.aggregate_id)
        )


async def test_a_missing_group_is_recreated(redis: Redis, settings: Settings, pool: asyncpg.Pool) -> None:
    ks = Keyspace.of(settings)
    await ensure_groups(redis, ks)
    await redis.xgroup_destroy(ks.dispatch(0, "high"), "workers")
    found = await _reconcile(settings, expect=1)
    assert [(g["stream"], g["group"]) for g in found["missing_groups"]] == [("dispatch:0:high", "workers")]
    await _reconcile(settings, "--repair", expect=0)
    assert [g["name"] for g in await redis.xinfo_groups(ks.dispatch(0, "high"))] == ["workers"]
    assert await _reconcile(settings, expect=0)


def test_bad_input_is_one_clear_line(settings: Settings) -> None:
    result = taskflow("reconcile", "--repairs", env=env_for(settings))
    assert result.returncode != 0 and "No such option" in result.stderr and "Traceback" not in result.stderr


def test_an_unreachable_redis_is_one_line_and_exit_1(settings: Settings) -> None:
    result = taskflow("reconcile", env=env_for(settings, TASKFLOW_REDIS_URL="redis://127.0.0.1:1/0"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and result.stderr.startswith("error: ")


async def test_with_appendfsync_always_every_acknowledged_submit_survives_kill_9(settings: Settings) -> None:
    """A private Redis (AOF, fsync on every write): N submits acknowledged, SIGKILL, a
    restart on the same AOF; every submission is there, with its dispatch entry."""
    data = Path(tempfile.mkdtemp(prefix="taskflow-test-aof-"))
    server = start_redis(data, appendfsync="always")
    port = int(server.url.rsplit(":", 1)[1].split("/")[0])
    ks = Keyspace.of(settings)
    redis = Redis.from_url(server.url, decode_responses=True, encoding_errors=DECODE_ERRORS)
    try:
        await ensure_groups(redis, ks)
        submitter = Submitter(redis, ks)
        ids = []
        for _ in range(200):
            event = submitted("echo")
            outcome = await submitter.submit(event, fingerprint="f", marker_ttl_seconds=600)
            assert outcome.created  # acknowledged: the client was told "accepted"
            ids.append(event.aggregate_id)
        os.kill(int((await redis.info("server"))["process_id"]), signal.SIGKILL)
        await redis.aclose()
        server.stop()  # reaps the killed process; nothing is flushed
        server = start_redis(data, port=port, appendfsync="always")
        redis = Redis.from_url(server.url, decode_responses=True, encoding_errors=DECODE_ERRORS)
        assert await redis.xlen(ks.events(0)) == 200
        assert await redis.xlen(ks.dispatch(0, "medium")) == 200
        for task_id in ids:
            assert await redis.exists(ks.task_marker(task_id))
    finally:
        await redis.aclose()
        server.stop()
