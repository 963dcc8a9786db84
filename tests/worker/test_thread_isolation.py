"""``@task(isolation="thread")``: sync tasks in worker threads, still stopped by a timeout,
a cancel and a lost lease (between bytecodes; ADR 0018)."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from redis.asyncio import Redis

from taskflow.errors import TaskFlowError
from taskflow.events import TaskCancelled, TaskLogged, TaskProgressed, TaskStarted, TaskSucceeded, TaskTimedOut
from taskflow.settings import Settings
from taskflow.tasks import task
from taskflow.worker.service import Worker
from tests.support.stack import events_of, running_worker, submit, submitted
from tests.support.tasks import SPINS
from tests.support.waiting import eventually


async def _terminal(redis: Redis, settings: Settings, task_id: str) -> list[object]:
    terminal = (TaskSucceeded, TaskTimedOut, TaskCancelled)
    return [e for e in await events_of(redis, settings, task_id) if isinstance(e, terminal)]


async def _stopped_spinning(task_id: str) -> bool:
    before = SPINS.get(task_id, 0)
    await asyncio.sleep(0.2)
    return SPINS.get(task_id, 0) == before


async def test_a_thread_task_runs_without_a_child_process(redis: Redis, settings: Settings) -> None:
    event = submitted("chatty_thread", steps=3)
    async with running_worker(settings, redis) as worker:
        await submit(redis, settings, event)
        (done,) = await eventually(lambda: _terminal(redis, settings, event.aggregate_id))
        assert worker.children.live_processes() == 0
    assert isinstance(done, TaskSucceeded) and done.result == msgspec.Raw(b"3")
    events = await events_of(redis, settings, event.aggregate_id)
    assert [e.message for e in events if isinstance(e, TaskLogged)] == ["step 0", "step 1", "step 2"]
    assert [e.percent for e in events if isinstance(e, TaskProgressed)][-1] == 100


async def test_a_thread_task_past_its_timeout_is_interrupted_even_if_it_swallows_exceptions(
    redis: Redis, settings: Settings
) -> None:
    event = msgspec.structs.replace(submitted("spin_thread", seconds=60.0), timeout_seconds=1)
    async with running_worker(settings, redis):
        await submit(redis, settings, event)
        (done,) = await eventually(lambda: _terminal(redis, settings, event.aggregate_id), timeout_s=30)
        assert isinstance(done, TaskTimedOut) and done.timeout_seconds == 1
        await eventually(lambda: _stopped_spinning(event.aggregate_id), timeout_s=5)


async def test_a_thread_task_whose_lease_is_lost_stops(redis: Redis, settings: Settings) -> None:
    event = submitted("spin_thread", seconds=60.0)
    async with running_worker(settings, redis) as worker:
        await submit(redis, settings, event)

        async def spinning() -> bool:
            started = any(isinstance(e, TaskStarted) for e in await events_of(redis, settings, event.aggregate_id))
            return started and SPINS.get(event.aggregate_id, 0) > 0

        await eventually(spinning)
        await _lose_lease_of(worker)
        await eventually(lambda: _stopped_spinning(event.aggregate_id), timeout_s=5)
        await eventually(lambda: asyncio.sleep(0, len(worker.inflight) == 0))


async def _lose_lease_of(worker: Worker) -> None:
    """As a lost lease (or a cancel) does: the run's asyncio task is cancelled."""
    for entry_id in list(worker.inflight.running):
        worker._lost(entry_id)


def test_isolation_is_refused_for_async_functions_and_unknown_values() -> None:
    async def not_sync() -> None: ...

    with pytest.raises(TaskFlowError, match="isolation applies to sync functions"):
        task(name="iso_async", isolation="thread")(not_sync)
    with pytest.raises(TaskFlowError, match="isolation must be"):
        task(name="iso_bad", isolation="fiber")  # type: ignore[call-overload]


def test_the_decorator_is_importable_from_the_package_root() -> None:
    """CONTRACT.md: ``from taskflow import task``, with ``isolation``."""
    from taskflow import task as root_task
    from taskflow.tasks import get_task

    @root_task(name="root_thread_task", isolation="thread")
    def tally(a: int, b: int) -> int:
        return a + b

    assert get_task("root_thread_task").isolation == "thread"
