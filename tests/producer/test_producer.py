"""The in-process producer against real Redis and a real worker: ``await fn.submit(...)``,
the handle's result, errors, progress, history and cancel; the same checks as the gateway."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest
from redis.asyncio import Redis

from taskflow.events import TaskProgressed, TaskStarted, TaskSubmitted, TaskSucceeded
from taskflow.producer import Producer, ResultTimeout, TaskCancelledError, TaskFailedError, TaskNotFound
from taskflow.settings import Settings
from taskflow.streams.keyspace import Keyspace
from taskflow.submission.errors import IdempotencyConflict, InvalidSubmission
from taskflow.sync_bridge import SyncCallInLoop
from taskflow.tasks import Call
from taskflow.tasks.builtin import echo, fail, sleep
from tests.support.processes import env_for
from tests.support.stack import running_projector, running_worker
from tests.support.tasks import add_numbers, chatty_async, day_after
from tests.support.waiting import eventually


@pytest.fixture
async def producer(settings: Settings) -> AsyncIterator[Producer]:
    async with await Producer.connect(settings) as producer:
        yield producer


async def test_a_submitted_task_returns_its_result_typed_by_the_function(
    producer: Producer, redis: Redis, settings: Settings
) -> None:
    handle = await add_numbers.submit(2, 3, producer=producer)
    day = await day_after.submit("2026-12-31", producer=producer)
    assert await handle.status() == "pending"
    async with running_worker(settings, redis):
        assert await handle.result(timeout=15) == 5
        assert await day.result(timeout=15) == date(2027, 1, 1)  # a date again, not its JSON text
    assert await handle.status() == "succeeded"
    history = await handle.events()
    assert [type(e) for e in history] == [TaskSubmitted, TaskStarted, TaskSucceeded]
    assert history[0].actor == "producer"


async def test_a_failing_task_raises_its_error_with_the_remote_traceback(
    producer: Producer, redis: Redis, settings: Settings
) -> None:
    handle = await fail.submit(message="boom", max_retries=0, producer=producer)
    async with running_worker(settings, redis):
        with pytest.raises(TaskFailedError) as raised:
            await handle.result(timeout=15)
    assert (raised.value.error_type, raised.value.error) == ("TaskFailedOnPurpose", "boom")
    assert "raise TaskFailedOnPurpose" in raised.value.remote_traceback
    assert raised.value.task_id == handle.task_id


async def test_a_wait_that_runs_out_raises_result_timeout_and_the_task_goes_on(producer: Producer) -> None:
    handle = await echo.submit(producer=producer)  # no worker: it stays pending
    with pytest.raises(ResultTimeout):
        await handle.result(timeout=0.05)
    assert await handle.status() == "pending"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda p: sleep.submit(seconds="abc", producer=p), "kwargs.seconds"),
        (lambda p: add_numbers.submit(1, producer=p), "args"),
        (lambda p: echo.submit(priority="urgent", producer=p), "priority"),
        (lambda p: echo.submit(timeout_seconds=0, producer=p), "timeout_seconds"),
        (lambda p: echo.submit(text="a\x00b", producer=p), "kwargs.text"),
    ],
)
async def test_what_the_gateway_refuses_the_producer_refuses_naming_the_field(
    producer: Producer, redis: Redis, settings: Settings, call: object, field: str
) -> None:
    with pytest.raises(InvalidSubmission) as raised:
        await call(producer)  # type: ignore[operator]
    assert raised.value.field == field
    assert await redis.xlen(Keyspace.of(settings).events(0)) == 0  # nothing appended


async def test_an_idempotency_key_returns_the_first_task_or_refuses_other_arguments(producer: Producer) -> None:
    first = await echo.submit(n=1, idempotency_key="order-7", producer=producer)
    again = await echo.submit(n=1, idempotency_key="order-7", producer=producer)
    assert again.task_id == first.task_id
    with pytest.raises(IdempotencyConflict) as raised:
        await echo.submit(n=2, idempotency_key="order-7", producer=producer)
    assert raised.value.field == "Idempotency-Key"


async def test_a_batch_is_appended_whole_or_not_at_all(producer: Producer, redis: Redis, settings: Settings) -> None:
    stream = Keyspace.of(settings).events(0)
    with pytest.raises(InvalidSubmission) as raised:
        await add_numbers.submit_many([(1, 2), (3, 4), (5, "six")], producer=producer)
    assert raised.value.field == "[2].args[1]"
    assert await redis.xlen(stream) == 0
    handles = await add_numbers.submit_many([(i, i) for i in range(50)] + [Call(a=1, b=1)], producer=producer)
    assert await redis.xlen(stream) == 51
    async with running_worker(settings, redis, concurrency=20):
        results = await asyncio.gather(*(h.result(timeout=30) for h in handles))
    assert results == [2 * i for i in range(50)] + [2]


async def test_progress_is_followed_until_the_task_ends(producer: Producer, redis: Redis, settings: Settings) -> None:
    handle = await chatty_async.submit(steps=3, producer=producer)
    async with running_worker(settings, redis):
        steps = [p async for p in handle.progress(poll_s=0.01)]
        assert await handle.result(timeout=15) == 3
    assert steps and all(isinstance(p, TaskProgressed) for p in steps)
    assert steps[-1].percent == 100  # steps may be coalesced; the last is never lost
    assert [p.percent for p in steps] == sorted({p.percent for p in steps})


async def test_a_cancelled_task_never_runs_and_its_result_says_so(producer: Producer) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    handle = await echo.submit(scheduled_at=later, producer=producer)
    assert await handle.status() == "scheduled"
    assert await handle.cancel("not needed") == "cancelled"
    with pytest.raises(TaskCancelledError, match="not needed"):
        await handle.result(timeout=5)
    assert await handle.cancel() == "cancelled"  # already over: its state, no new event


async def test_dependencies_wait_for_their_parents(producer: Producer, redis: Redis, settings: Settings) -> None:
    parent = await add_numbers.submit(1, 1, producer=producer)
    child = await echo.submit(depends_on=[parent], producer=producer)
    assert await child.status() == "waiting"
    with pytest.raises(InvalidSubmission, match="unknown task"):
        await echo.submit(depends_on=["00000000-0000-4000-8000-000000000000"], producer=producer)


async def test_an_unknown_task_id_is_not_found(producer: Producer) -> None:
    with pytest.raises(TaskNotFound):
        await producer.handle("00000000-0000-4000-8000-000000000000").status()


async def test_the_sync_twin_works_without_a_loop_and_refuses_inside_one(
    settings: Settings, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env_for(settings).items():
        if not name.startswith("TASKFLOW_"):
            continue
        monkeypatch.setenv(name, value)
    with pytest.raises(SyncCallInLoop):
        add_numbers.submit_sync(1, 2)
    async with running_worker(settings, redis):
        result = await asyncio.to_thread(lambda: add_numbers.submit_sync(20, 22).result(timeout=15))
    assert result == 42


async def test_concurrent_submits_share_the_kept_connection_and_the_pool(
    producer: Producer, redis: Redis, settings: Settings
) -> None:
    handles = await asyncio.gather(*(add_numbers.submit(i, i, producer=producer) for i in range(200)))
    assert len({h.task_id for h in handles}) == 200
    assert await redis.xlen(Keyspace.of(settings).events(0)) == 200
    async with running_worker(settings, redis, concurrency=20):
        assert await asyncio.gather(*(h.result(timeout=30) for h in handles)) == [2 * i for i in range(200)]


async def test_an_old_tasks_result_and_history_come_from_the_archive_once_trimmed(
    producer: Producer, redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    """After the coordinator trimmed the stream (everything archived), a handle still
    gives the result, raises a failure, and the whole history, in order."""
    ks = Keyspace.of(settings)
    ok = await add_numbers.submit(20, 22, producer=producer)
    bad = await fail.submit(message="old boom", max_retries=0, producer=producer)
    async with running_projector(settings, redis, pool):
        async with running_worker(settings, redis):
            assert await ok.result(timeout=15) == 42
            with pytest.raises(TaskFailedError):
                await bad.result(timeout=15)
        total = await redis.xlen(ks.events(0))

        async def archived() -> bool:
            return int(await pool.fetchval("SELECT count(*) FROM event_archive")) == total

        await eventually(archived)
    live_history = await ok.events()
    await redis.xtrim(ks.events(0), maxlen=0, approximate=False)
    assert await redis.xlen(ks.events(0)) == 0
    assert await ok.result(timeout=1) == 42
    with pytest.raises(TaskFailedError) as raised:
        await bad.result(timeout=1)
    assert raised.value.error == "old boom"
    assert [e.event_id for e in await ok.events()] == [e.event_id for e in live_history]
    assert [type(e) for e in await ok.events()] == [TaskSubmitted, TaskStarted, TaskSucceeded]
