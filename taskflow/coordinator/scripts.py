"""The coordinator's Lua scripts (``coordinator/lua/``): leading a partition, queueing held
tasks, burying silent workers, advancing cron schedules; each of those writes refuses a
leader whose lease moved on (ARCHITECTURE: fencing). And one read: where a stream's
consumer groups stand, for trimming."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from taskflow.coordinator.trimming import GroupCursor
from taskflow.events import TaskQueued, WorkerDied, encode, tag_of
from taskflow.projections.store import parse_stream_id
from taskflow.streams.dispatch import HeldDispatch
from taskflow.streams.keyspace import Keyspace
from taskflow.streams.lua import LuaScripts


class CoordinatorScripts(LuaScripts):
    def __init__(self, redis: Redis, keyspace: Keyspace) -> None:
        super().__init__(redis, keyspace, "taskflow.coordinator")
        self._lead = self.register("lead")
        self._promote = self.register("promote")
        self._bury = self.register("bury")
        self._schedule_advance = self.register("schedule_advance")
        self._group_cursors = self.register("group_cursors")

    async def lead(self, *, partition: int, candidate: str, lease_ms: int) -> str | None:
        """Take or keep the leadership of ``partition``: ``id|fence`` while we lead."""
        ks = self.keyspace
        value = await self._lead(
            keys=[ks.coordinator_leader(partition), ks.coordinator_fence(partition)], args=[candidate, lease_ms]
        )
        return str(value) if value else None

    async def promote(
        self,
        *,
        partition: int,
        leader: str,
        held: HeldDispatch,
        queued: TaskQueued,
        pipeline: Pipeline | None = None,
        from_waiting: bool = False,
    ) -> str | None:
        """Queue a held task's dispatch: from the held set (its time came) or, with
        ``from_waiting``, from the tasks waiting on parents. The TaskQueued event id, or
        None; inside a pipeline the answer comes from ``pipeline.execute()``."""
        ks = self.keyspace
        answer = await self._promote(
            keys=[
                ks.coordinator_leader(partition),
                ks.waiting(partition) if from_waiting else ks.held_due(partition),
                ks.held(partition),
                ks.dispatch(partition, held.priority),
                ks.events(partition),
                ks.task_marker(held.task_id, partition),
            ],
            args=[leader, held.task_id, encode(queued), tag_of(queued)],
            client=pipeline,
        )
        return None if pipeline is not None or not answer else str(answer)

    async def bury(
        self, *, partition: int, leader: str, worker_id: str, silent_since_ms: int, died: WorkerDied
    ) -> str | None:
        """Record WorkerDied if the worker is still silent and we still lead ``partition``."""
        ks = self.keyspace
        answer = await self._bury(
            keys=[ks.coordinator_leader(partition), ks.worker_registry(partition), ks.events(partition)],
            args=[leader, worker_id, silent_since_ms, encode(died), tag_of(died)],
        )
        return str(answer) if answer else None

    async def schedule_advance(
        self, *, partition: int, leader: str, schedule_id: str, tick_ms: int, next_ms: int
    ) -> bool:
        ks = self.keyspace
        answer = await self._schedule_advance(
            keys=[ks.coordinator_leader(partition), ks.cron_due(partition)],
            args=[leader, schedule_id, tick_ms, next_ms],
        )
        return bool(answer)

    async def group_cursors(self, stream: str) -> list[GroupCursor]:
        """Every consumer group of ``stream``, read atomically; [] when it does not exist."""
        flat = await self._group_cursors(keys=[stream])
        return [
            GroupCursor(
                name=str(name),
                last_delivered=parse_stream_id(str(delivered)),
                oldest_pending=parse_stream_id(str(pending)) if pending else None,
            )
            for name, delivered, pending in zip(flat[0::3], flat[1::3], flat[2::3], strict=True)
        ]
