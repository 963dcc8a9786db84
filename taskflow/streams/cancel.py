"""Cancelling a task by its live state: asked by a client (the gateway) or by the
coordinator for a child whose parent ended badly."""

from __future__ import annotations

from redis.asyncio import Redis

from taskflow.events import OperatorActed, TaskCancelled, TaskCancelRequested, encode, tag_of
from taskflow.streams.keyspace import Keyspace
from taskflow.streams.lua import LuaScripts


class Canceller(LuaScripts):
    def __init__(self, redis: Redis, keyspace: Keyspace) -> None:
        super().__init__(redis, keyspace, "taskflow.streams")
        self._cancel = self.register("cancel")

    async def cancel(
        self,
        task_id: str,
        cancelled: TaskCancelled,
        requested: TaskCancelRequested | None,
        audit: OperatorActed | None = None,
    ) -> tuple[str, str]:
        """Cancel by live state: ("cancelled" | "cancelling" | "terminal:<state>" | "unknown",
        event id). A queued or held task is cancelled at once (``cancelled``); a running
        one is asked to stop (``requested``, which its worker acts on). ``audit``, when a
        person asked, is appended in the same step if the cancel took effect."""
        ks = self.keyspace
        p = ks.partition_of(task_id)
        outcome, event_id = await self._cancel(
            keys=[ks.task_marker(task_id), ks.held_due(p), ks.held(p), ks.events(p), ks.waiting(p)],
            args=[
                task_id,
                encode(cancelled),
                b"" if requested is None else encode(requested),
                tag_of(cancelled),
                "" if requested is None else tag_of(requested),
                b"" if audit is None else encode(audit),
                "" if audit is None else tag_of(audit),
            ],
        )
        return str(outcome), str(event_id)
