"""The gateway's own Lua scripts (``gateway/lua/``): re-dispatching a task on a client's
retry, creating and deleting cron schedules, counting a user's open feeds, rate limits."""

from __future__ import annotations

import time
from typing import Literal

from redis.asyncio import Redis

from taskflow.events import OperatorActed, ScheduleCreated, ScheduleDeleted, TaskQueued, TaskSubmitted, encode, tag_of
from taskflow.streams.keyspace import Keyspace
from taskflow.streams.lua import LuaScripts


class GatewayScripts(LuaScripts):
    def __init__(self, redis: Redis, keyspace: Keyspace) -> None:
        super().__init__(redis, keyspace, "taskflow.gateway")
        self._requeue = self.register("requeue")
        self._schedule_create = self.register("schedule_create")
        self._schedule_delete = self.register("schedule_delete")
        self._open_feed = self.register("open_feed")
        self._rate_limit = self.register("rate_limit")

    async def rate_limit(self, keys: list[str], limits: list[int], period_ms: int) -> list[int]:
        """Check ``limits`` (requests per ``period_ms``) together; see lua/rate_limit.lua."""
        answer: list[int] = await self._rate_limit(keys=keys, args=[int(time.time() * 1000), period_ms, *limits])
        return answer

    async def open_feed(
        self, *, user: str, feed_id: str, action: Literal["open", "renew", "close"], lapse_ms: int, cap: int
    ) -> bool:
        """Count a feed in (``open``: False when the user has ``cap`` open already), keep it
        counted (``renew``, before it lapses), or out (``close``)."""
        answer = await self._open_feed(
            keys=[self.keyspace.open_feeds(user)],
            args=[action, feed_id, int(time.time() * 1000), lapse_ms, cap],
        )
        return bool(answer)

    async def requeue(
        self,
        *,
        submitted: TaskSubmitted,
        queued: TaskQueued,
        audit: OperatorActed,
        marker_ttl_seconds: int,
        projected_state: str,
    ) -> tuple[str, str]:
        """Re-dispatch a failed / timed-out / cancelled task: ("requeued", event id) or
        ("conflict", its state). ``audit`` says who asked and why, appended in the step."""
        ks = self.keyspace
        task_id = submitted.aggregate_id
        p = ks.partition_of(task_id)
        outcome, detail = await self._requeue(
            keys=[ks.task_marker(task_id), ks.dispatch(p, submitted.priority), ks.events(p)],
            args=[
                task_id,
                submitted.event_id,
                encode(submitted),
                encode(queued),
                marker_ttl_seconds,
                projected_state,
                tag_of(queued),
                encode(audit),
                tag_of(audit),
            ],
        )
        return str(outcome), str(detail)

    async def schedule_create(
        self, *, schedule_id: str, definition: bytes, first_due_ms: int, created: ScheduleCreated
    ) -> str:
        ks = self.keyspace
        p = ks.partition_of(schedule_id)
        answer = await self._schedule_create(
            keys=[ks.cron_schedules(p), ks.cron_due(p), ks.events(p)],
            args=[schedule_id, definition, first_due_ms, encode(created), tag_of(created)],
        )
        return str(answer)

    async def schedule_delete(self, *, schedule_id: str, deleted: ScheduleDeleted) -> str | None:
        ks = self.keyspace
        p = ks.partition_of(schedule_id)
        answer = await self._schedule_delete(
            keys=[ks.cron_schedules(p), ks.cron_due(p), ks.events(p)],
            args=[schedule_id, encode(deleted), tag_of(deleted)],
        )
        return str(answer) if answer else None
