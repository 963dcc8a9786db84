"""The one way a submission is appended: the gateway, cron ticks, the benchmarks and the
tests all come here."""

from __future__ import annotations

from typing import Any

import msgspec
from redis.asyncio import Redis

from taskflow.events import TaskSubmitted, encode, tag_of
from taskflow.streams.dispatch import dispatch_mode, due_ms
from taskflow.streams.keyspace import Keyspace
from taskflow.streams.lua import LuaScripts


class SubmitOutcome(msgspec.Struct, frozen=True):
    created: bool
    event_id: str
    fingerprint: str


class Submitter(LuaScripts):
    def __init__(self, redis: Redis, keyspace: Keyspace) -> None:
        super().__init__(redis, keyspace, "taskflow.streams")
        self._submit = self.register("submit")

    async def submit(self, event: TaskSubmitted, *, fingerprint: str, marker_ttl_seconds: int) -> SubmitOutcome:
        """Append ``event`` and put its task in line as ``dispatch_mode`` decides (on its
        dispatch stream, held until due, or waiting for its parents), in one atomic step
        (invariants 2, 3).

        The marker remembers the task for ``marker_ttl_seconds`` past its due time: it
        also carries the task's live state, so it must outlast a far schedule."""
        ks = self.keyspace
        task_id = event.aggregate_id
        p = ks.partition_of(task_id)
        occurred_ms = int(event.occurred_at.timestamp() * 1000)
        held_until_ms = due_ms(event) or occurred_ms
        result: list[Any] = await self._submit(
            keys=[
                ks.events(p),
                ks.dispatch(p, event.priority),
                ks.task_marker(task_id),
                ks.held_due(p),
                ks.held(p),
                ks.waiting(p),
            ],
            args=[
                tag_of(event),
                encode(event),
                task_id,
                fingerprint,
                marker_ttl_seconds + max(0, (held_until_ms - occurred_ms) // 1000),
                dispatch_mode(event),
                held_until_ms,
                event.priority,
            ],
        )
        return SubmitOutcome(created=bool(result[0]), event_id=str(result[1]), fingerprint=str(result[2] or ""))
