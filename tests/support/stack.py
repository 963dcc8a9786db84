"""Running TaskFlow services inside the test's event loop, and reading the event log."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from typing import Protocol, TypeVar
from uuid import uuid4

import asyncpg
import msgspec
from redis.asyncio import Redis

from taskflow.coordinator.service import Coordinator
from taskflow.events import PRIORITIES, AnyEvent, TaskSubmitted, decode
from taskflow.projections.projector import Projector
from taskflow.settings import Settings
from taskflow.streams.groups import ensure_groups
from taskflow.streams.keyspace import Keyspace
from taskflow.streams.submit import Submitter
from taskflow.worker.service import Worker


def submitted(
    task_name: str = "echo", *, task_id: str | None = None, max_retries: int = 0, **kwargs: object
) -> TaskSubmitted:
    """A TaskSubmitted as the gateway builds it; no retries unless a test asks for them."""
    return TaskSubmitted(
        aggregate_id=task_id or str(uuid4()),
        occurred_at=datetime.now(UTC),
        correlation_id=uuid4().hex,
        actor="tester",
        task_name=task_name,
        kwargs=msgspec.Raw(msgspec.json.encode(kwargs)),
        max_retries=max_retries,
    )


async def submit(redis: Redis, settings: Settings, event: TaskSubmitted) -> str:
    """Submit through the real submit script, as the gateway does."""
    keyspace = Keyspace.of(settings)
    await ensure_groups(redis, keyspace)
    outcome = await Submitter(redis, keyspace).submit(event, fingerprint="f", marker_ttl_seconds=60)
    return outcome.event_id


async def submitted_and_read(redis: Redis, settings: Settings, consumer: str, *, count: int, read: int) -> None:
    """``count`` echo tasks submitted (dispatch:0:medium), the first ``read`` of them read by
    ``consumer`` of the workers group and left pending, as a worker that died holding them."""
    keyspace = Keyspace.of(settings)
    for _ in range(count):
        await submit(redis, settings, submitted("echo"))
    await redis.xreadgroup("workers", consumer, {keyspace.dispatch(0, "medium"): ">"}, count=read)


async def all_events(redis: Redis, settings: Settings) -> list[AnyEvent]:
    events: list[AnyEvent] = []
    keyspace = Keyspace.of(settings)
    for p in keyspace.all_partitions:
        for event_id, fields in await redis.xrange(keyspace.events(p)):
            events.append(decode(event_id, fields["data"].encode()))
    return events


async def events_of(redis: Redis, settings: Settings, task_id: str) -> list[AnyEvent]:
    return [e for e in await all_events(redis, settings) if e.aggregate_id == task_id]


class _Service(Protocol):
    async def run(self) -> None: ...
    def stop(self) -> None: ...


S = TypeVar("S", bound=_Service)


@asynccontextmanager
async def _running(service: S, stop_timeout_s: float) -> AsyncIterator[S]:
    """``service.run()`` in a task for the block; stopped cleanly after it."""
    task = asyncio.create_task(service.run())
    try:
        yield service
    finally:
        service.stop()
        await asyncio.wait_for(task, stop_timeout_s)


def running_worker(settings: Settings, redis: Redis, concurrency: int = 5) -> AbstractAsyncContextManager[Worker]:
    return _running(Worker(settings, redis, concurrency=concurrency, queues=PRIORITIES), 30)


def running_projector(settings: Settings, redis: Redis, pool: asyncpg.Pool) -> AbstractAsyncContextManager[Projector]:
    return _running(Projector(settings, redis, pool), 30)


def running_coordinator(
    settings: Settings, redis: Redis, pool: asyncpg.Pool
) -> AbstractAsyncContextManager[Coordinator]:
    return _running(Coordinator(settings, redis, pool), 10)
