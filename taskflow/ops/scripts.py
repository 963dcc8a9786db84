"""The Lua scripts of ``taskflow streams`` and ``taskflow reconcile`` (``ops/lua/``): the
changes ops make whose check and write must be one step."""

from __future__ import annotations

from typing import Literal

from redis.asyncio import Redis

from taskflow.events import OperatorActed, TaskCancelled, TaskQueued, TaskSubmitted, encode, tag_of
from taskflow.streams.dispatch import DispatchMode
from taskflow.streams.keyspace import WORKERS_GROUP, Keyspace
from taskflow.streams.lua import LuaScripts


class OpsScripts(LuaScripts):
    def __init__(self, redis: Redis, keyspace: Keyspace) -> None:
        super().__init__(redis, keyspace, "taskflow.ops")
        self._delete_idle_consumer = self.register("delete_idle_consumer")
        self._reappend_quarantined = self.register("reappend_quarantined")
        self._restore_task = self.register("restore_task")
        self._hand_off_entry = self.register("hand_off_entry")
        self._drop_entry = self.register("drop_entry")

    async def delete_idle_consumer(self, *, stream_key: str, group: str, consumer: str, min_idle_ms: int) -> bool:
        """XGROUP DELCONSUMER, done only if the consumer still holds nothing and is still
        idle past ``min_idle_ms``; whether it was deleted."""
        answer = await self._delete_idle_consumer(keys=[stream_key], args=[group, consumer, min_idle_ms])
        return int(answer) == 1

    async def reappend_quarantined(self, *, partition: int, entry_id: str, event_type: str, payload: bytes) -> str:
        """The id the quarantined entry ``entry_id`` now has in the events stream: appended
        now, or found appended by an earlier, interrupted retry."""
        _, new_id = await self._reappend_quarantined(
            keys=[self.keyspace.quarantine_retried(partition), self.keyspace.events(partition)],
            args=[entry_id, event_type, payload],
        )
        return str(new_id)

    async def restore_task(
        self,
        *,
        submitted: TaskSubmitted,
        queued: TaskQueued,
        mode: DispatchMode,
        due_ms: int,
        marker_ttl_seconds: int,
    ) -> tuple[str, str]:
        """Put a task Redis lost back in line from its archived submission, with
        ``queued`` saying why: ("restored", TaskQueued event id), or ("present", where)
        when it is in line already (see lua/restore_task.lua)."""
        ks = self.keyspace
        task_id = submitted.aggregate_id
        p = ks.partition_of(task_id)
        outcome, detail = await self._restore_task(
            keys=[
                ks.task_marker(task_id),
                ks.dispatch(p, submitted.priority),
                ks.held_due(p),
                ks.held(p),
                ks.waiting(p),
                ks.events(p),
            ],
            args=[
                task_id,
                submitted.event_id,
                encode(submitted),
                encode(queued),
                tag_of(queued),
                mode,
                due_ms,
                submitted.priority,
                marker_ttl_seconds,
            ],
        )
        return str(outcome), str(detail)

    async def hand_off_entry(
        self, *, partition: int, stream_key: str, entry_id: str, owner: str, idle_ms: int, audit: OperatorActed
    ) -> tuple[str, str]:
        """("done", audit event id) or ("moved", its owner now, '' when no longer pending)."""
        outcome, detail = await self._hand_off_entry(
            keys=[stream_key, self.keyspace.events(partition)],
            args=[WORKERS_GROUP, entry_id, owner, idle_ms, encode(audit), tag_of(audit)],
        )
        return str(outcome), str(detail)

    async def drop_entry(
        self,
        *,
        partition: int,
        stream_key: str,
        entry_id: str,
        owner: str,
        how: Literal["ack", "requeue"],
        task_event: TaskCancelled | TaskQueued,
        audit: OperatorActed,
    ) -> tuple[str, str, str]:
        """("done", the task's event id, the new entry id or '') or ("moved", owner now, '')."""
        ks = self.keyspace
        outcome, detail, new_id = await self._drop_entry(
            keys=[
                stream_key,
                ks.events(partition),
                ks.starts(partition),
                ks.task_marker(task_event.aggregate_id, partition),
            ],
            args=[
                WORKERS_GROUP,
                entry_id,
                owner,
                how,
                encode(task_event),
                tag_of(task_event),
                encode(audit),
                tag_of(audit),
            ],
        )
        return str(outcome), str(detail), str(new_id)
