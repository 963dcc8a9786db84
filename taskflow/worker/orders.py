"""Orders a worker polls for: pause / resume (its control hash) and task cancels (the
``cancel`` flag cancel.lua sets in a running task's marker)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import cast

from redis.asyncio import Redis

from taskflow.streams.keyspace import Keyspace
from taskflow.worker.entry import DispatchEntry


async def pause_ordered(redis: Redis, keyspace: Keyspace, worker_id: str) -> bool:
    value = await cast("Awaitable[str | None]", redis.hget(keyspace.worker_control(worker_id), "paused"))
    return value == "1"


async def cancel_requested(redis: Redis, keyspace: Keyspace, running: list[DispatchEntry]) -> list[DispatchEntry]:
    """The running entries whose task a user asked to cancel."""
    if not running:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for entry in running:
            pipe.hget(keyspace.task_marker(entry.task.aggregate_id, entry.partition), "cancel")
        flags = await pipe.execute()
    return [entry for entry, flag in zip(running, flags, strict=True) if flag]
