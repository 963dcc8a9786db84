"""Ids the Redis marker has forgotten. The submit script decides whether an id is new
while the task's marker lives (``TASKFLOW_IDEMPOTENCY_TTL_SECONDS`` past its due time);
after that only the projection still knows the id, so a reused idempotency key or a
client-chosen id is looked up there before the append."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from redis.asyncio import Redis

from taskflow.streams.keyspace import Keyspace
from taskflow.submission.errors import TaskIdTaken
from taskflow.submission.intake import Intake


class ScalarQuery(Protocol):
    async def fetchval(self, query: str, *args: Any) -> Any: ...


async def refuse_if_projected_elsewhere(
    redis: Redis, keyspace: Keyspace, database: Callable[[], Awaitable[ScalarQuery]], intakes: Sequence[Intake]
) -> None:
    """``TaskIdTaken`` when the id of an idempotent or client-identified submission names
    a task the marker has forgotten but the projection holds. Two round trips for any
    number of submissions; ``database`` is asked for only when needed (a producer opens
    its pool on first need)."""
    named = [intake for intake in intakes if intake.client_chose_id or intake.event.idempotency_key]
    if not named:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for intake in named:
            pipe.exists(keyspace.task_marker(str(intake.task_id)))
        known: list[int] = await pipe.execute()
    forgotten = [intake.task_id for intake, exists in zip(named, known, strict=True) if not exists]
    if not forgotten:
        return
    pool = await database()
    taken = await pool.fetchval("SELECT task_id FROM tasks WHERE task_id = ANY($1::uuid[]) LIMIT 1", forgotten)
    if taken is not None:
        raise TaskIdTaken(str(taken))
