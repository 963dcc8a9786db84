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
        self._reappend_quarantined = self.register("reappend_quarantined")

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
