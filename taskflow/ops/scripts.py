"""The Lua scripts of ``taskflow streams`` (``ops/lua/``): the changes ops make whose check
and write must be one step."""

from __future__ import annotations

from redis.asyncio import Redis

from taskflow.streams.keyspace import Keyspace
from taskflow.streams.lua import LuaScripts


class OpsScripts(LuaScripts):
    def __init__(self, redis: Redis, keyspace: Keyspace) -> None:
        super().__init__(redis, keyspace, "taskflow.ops")
        self._delete_idle_consumer = self.register("delete_idle_consumer")

    async def delete_idle_consumer(self, *, stream_key: str, group: str, consumer: str, min_idle_ms: int) -> bool:
        """XGROUP DELCONSUMER, done only if the consumer still holds nothing and is still
        idle past ``min_idle_ms``; whether it was deleted."""
        answer = await self._delete_idle_consumer(keys=[stream_key], args=[group, consumer, min_idle_ms])
        return int(answer) == 1
