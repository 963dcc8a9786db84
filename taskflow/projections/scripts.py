"""The projector's Lua script (``projections/lua/``): reading a partition's events only
while it holds the partition's lock (ARCHITECTURE invariant 6)."""

from __future__ import annotations

from redis.asyncio import Redis

from taskflow.errors import TaskFlowError
from taskflow.streams.fields import pairs
from taskflow.streams.keyspace import PROJECTOR_GROUP, Keyspace
from taskflow.streams.lua import LuaScripts


class LockLost(TaskFlowError):
    """Raised by ``projector_read`` when the caller no longer holds the partition lock."""


class ProjectorScripts(LuaScripts):
    def __init__(self, redis: Redis, keyspace: Keyspace) -> None:
        super().__init__(redis, keyspace, "taskflow.projections")
        self._projector_read = self.register("projector_read")

    async def projector_read(
        self, *, partition: int, token: str, consumer: str, count: int, start_id: str
    ) -> list[tuple[str, dict[str, str]]]:
        """XREADGROUP for the projector, refused (``LockLost``) once its lock moved on."""
        lock_key = self.keyspace.projector_lock(partition)
        answer = await self._projector_read(
            keys=[lock_key, self.keyspace.events(partition)], args=[token, PROJECTOR_GROUP, consumer, count, start_id]
        )
        if answer is None:
            raise LockLost(lock_key)
        return [(str(entry_id), pairs(fields)) for entry_id, fields in answer]
