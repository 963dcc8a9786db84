"""Lease renewal (invariant 5): a lease really lost stops the run; an entry our own
outcome just acked is not a lost lease (issue 11: spurious task_cancelled_lease_lost)."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis
from structlog.testing import capture_logs

from taskflow.events import TaskStarted, TaskSucceeded
from taskflow.settings import Settings
from taskflow.streams.keyspace import WORKERS_GROUP, Keyspace
from taskflow.worker.lease import renew_once
from taskflow.worker.service import Worker
from tests.support.stack import events_of, running_worker, submit, submitted
from tests.support.waiting import eventually


async def _renew(worker: Worker) -> None:
    await renew_once(worker.scripts, worker.id, worker.inflight, worker._lost, worker.redis_outage)


async def test_a_renewal_right_after_the_outcome_was_acked_cancels_nothing(redis: Redis, settings: Settings) -> None:
    """The outcome's append acks the entry before the run leaves the in-flight set; a
    renewal in between finds the entry gone. That is our own ack, not a lost lease."""
    event = submitted("echo", n=1)
    renewed = asyncio.Event()
    with capture_logs() as logs:
        async with running_worker(settings, redis) as worker:
            record = worker.recorder.record

            async def record_then_renew(*args: Any, **kwargs: Any) -> str | None:
                answer = await record(*args, **kwargs)
                if args[2] == "finish":
                    # Acked, and the run still holds the entry: the renewal loop's turn
                    # comes now, from its own task, as in a busy worker.
                    await asyncio.create_task(_renew(worker))
                    renewed.set()
                return answer

            worker.recorder.record = record_then_renew  # type: ignore[method-assign]
            await submit(redis, settings, event)
            await asyncio.wait_for(renewed.wait(), 15)
            await eventually(lambda: asyncio.sleep(0, len(worker.inflight) == 0))
    assert [e["event"] for e in logs if "lease_lost" in e["event"]] == []
    done = [e for e in await events_of(redis, settings, event.aggregate_id) if isinstance(e, TaskSucceeded)]
    assert len(done) == 1


async def test_a_lease_really_lost_stops_the_run(redis: Redis, settings: Settings) -> None:
    event = submitted("sleep", seconds=30.0)
    with capture_logs() as logs:
        async with running_worker(settings, redis) as worker:
            await submit(redis, settings, event)

            async def started() -> bool:
                return any(isinstance(e, TaskStarted) for e in await events_of(redis, settings, event.aggregate_id))

            await eventually(started)
            stream = Keyspace.of(settings).dispatch(0, "medium")
            (entry,) = await redis.xpending_range(stream, WORKERS_GROUP, min="-", max="+", count=1)
            await redis.xclaim(stream, WORKERS_GROUP, "another-worker", 0, [entry["message_id"]])
            await _renew(worker)
            await eventually(lambda: asyncio.sleep(0, len(worker.inflight) == 0))
    assert [e["event"] for e in logs if e["event"] == "task_cancelled_lease_lost"] == ["task_cancelled_lease_lost"]
    assert not [e for e in await events_of(redis, settings, event.aggregate_id) if isinstance(e, TaskSucceeded)]
