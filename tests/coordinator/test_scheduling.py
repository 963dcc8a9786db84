"""Scheduled tasks and retries: held in the schedule, put in line by the coordinator
leader when due, exactly once, within a second of their time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import msgspec
from redis.asyncio import Redis

from taskflow.coordinator.decisions import queued_event
from taskflow.events import TaskFailed, TaskQueued, TaskStarted, TaskSucceeded
from taskflow.settings import Settings
from taskflow.streams.keyspace import Keyspace
from tests.support.stack import all_events, events_of, running_coordinator, running_worker, submit, submitted
from tests.support.waiting import eventually


async def test_a_scheduled_task_is_held_until_its_time_then_runs_within_a_second(
    redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    due = datetime.now(UTC) + timedelta(seconds=1.5)
    event = msgspec.structs.replace(submitted("echo"), scheduled_at=due)
    await submit(redis, settings, event)
    assert await redis.xlen(Keyspace.of(settings).dispatch(0, "medium")) == 0
    async with running_coordinator(settings, redis, pool), running_worker(settings, redis):
        await eventually(lambda: _has(redis, settings, event.aggregate_id, TaskSucceeded), timeout_s=10)
    history = await events_of(redis, settings, event.aggregate_id)
    (queued,) = [e for e in history if isinstance(e, TaskQueued)]
    (started,) = [e for e in history if isinstance(e, TaskStarted)]
    assert queued.reason == "scheduled"
    assert due <= queued.occurred_at < due + timedelta(seconds=1)
    assert started.occurred_at - due < timedelta(seconds=1)


async def _has(redis: Redis, settings: Settings, task_id: str, kind: type) -> bool:
    return any(isinstance(e, kind) for e in await events_of(redis, settings, task_id))


async def test_failures_retry_with_exponential_backoff_then_give_up(
    redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    event = submitted("fail", max_retries=3, message="flaky")
    await submit(redis, settings, event)
    async with running_coordinator(settings, redis, pool), running_worker(settings, redis):
        await eventually(lambda: _final_failure(redis, settings, event.aggregate_id), timeout_s=20)
    history = await events_of(redis, settings, event.aggregate_id)
    failures = [e for e in history if isinstance(e, TaskFailed)]
    starts = [e for e in history if isinstance(e, TaskStarted)]
    assert [f.retry_count for f in failures] == [1, 2, 3, 3]
    assert failures[-1].retry_at is None and all(f.retry_at for f in failures[:-1])
    # Delay from each failure to the next start: 2^n s with +-10 % jitter, plus dispatch lag.
    for n, (failure, restart) in enumerate(zip(failures, starts[1:], strict=False)):
        waited = (restart.occurred_at - failure.occurred_at).total_seconds()
        assert 2**n * 0.9 <= waited <= 2**n * 1.1 + 0.5, (n, waited)
    assert sum(isinstance(e, TaskQueued) and e.reason == "retry" for e in history) == 3


async def _final_failure(redis: Redis, settings: Settings, task_id: str) -> bool:
    return any(isinstance(e, TaskFailed) and e.retry_at is None for e in await events_of(redis, settings, task_id))


async def test_two_coordinators_elect_one_leader_and_queue_each_task_once(
    redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    due = datetime.now(UTC) + timedelta(seconds=0.5)
    tasks = [msgspec.structs.replace(submitted("echo", i=i), scheduled_at=due) for i in range(50)]
    for event in tasks:
        await submit(redis, settings, event)
    async with running_coordinator(settings, redis, pool) as a, running_coordinator(settings, redis, pool) as b:
        await eventually(lambda: _queued(redis, settings, len(tasks)), timeout_s=10)
        assert (0 in a.leading) != (0 in b.leading)
    queued = [e.aggregate_id for e in await all_events(redis, settings) if isinstance(e, TaskQueued)]
    assert sorted(queued) == sorted(e.aggregate_id for e in tasks)
    assert await redis.xlen(Keyspace.of(settings).dispatch(0, "medium")) == len(tasks)


async def _queued(redis: Redis, settings: Settings, n: int) -> bool:
    return sum(isinstance(e, TaskQueued) for e in await all_events(redis, settings)) >= n


async def test_a_stale_leader_cannot_promote(redis: Redis, settings: Settings) -> None:
    """Writes carrying an old fencing token are refused."""
    from taskflow.coordinator.scripts import CoordinatorScripts

    keyspace = Keyspace.of(settings)
    scripts = CoordinatorScripts(redis, keyspace)
    old = await scripts.lead(partition=0, candidate="old", lease_ms=100)
    assert old is not None and old.endswith("|1")
    await asyncio.sleep(0.2)  # the old leader stalls past its lease
    new = await scripts.lead(partition=0, candidate="new", lease_ms=10_000)
    assert new is not None and new.endswith("|2")
    assert await scripts.lead(partition=0, candidate="old", lease_ms=100) is None
    event = msgspec.structs.replace(submitted("echo"), scheduled_at=datetime.now(UTC) + timedelta(milliseconds=1))
    await submit(redis, settings, event)
    from taskflow.streams.dispatch import decode_held

    held = decode_held(await redis.hget(keyspace.held(0), event.aggregate_id))  # type: ignore[arg-type]
    async with redis.pipeline(transaction=False) as pipe:
        queued = queued_event(held, event, old, datetime.now(UTC))
        await scripts.promote(partition=0, leader=old, held=held, queued=queued, pipeline=pipe)
        assert await pipe.execute() == [None]
    assert await redis.zscore(keyspace.held_due(0), event.aggregate_id) is not None
