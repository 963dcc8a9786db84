"""Orders a worker polls for: pause / resume (its control hash) and task cancels (the
``cancel`` flag cancel.lua sets in a running task's marker)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import cast

from redis.asyncio import Redis

from taskflow import keys
from taskflow.settings import Settings
from taskflow.worker.entry import DispatchEntry


async def pause_ordered(redis: Redis, settings: Settings, worker_id: str) -> bool:
    value = await cast(
        "Awaitable[str | None]", redis.hget(keys.worker_control(settings.namespace, worker_id), "paused")
    )
    return value == "1"


async def cancel_requested(redis: Redis, settings: Settings, running: list[DispatchEntry]) -> list[DispatchEntry]:
    """The running entries whose task a user asked to cancel."""
    if not running:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for entry in running:
            pipe.hget(keys.task_marker(settings.namespace, entry.partition, entry.task.aggregate_id), "cancel")
        flags = await pipe.execute()
    return [entry for entry, flag in zip(running, flags, strict=True) if flag]
