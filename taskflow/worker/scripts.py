"""The worker's Lua scripts (``worker/lua/``): appending while it owns an entry, renewing
its leases, taking over a dead worker's entries."""

from __future__ import annotations

from typing import Literal

import msgspec
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.typing import EncodableT

from taskflow.streams.dispatch import HeldDispatch, encode_held
from taskflow.streams.fields import pairs
from taskflow.streams.keyspace import WORKERS_GROUP, Keyspace
from taskflow.streams.lua import LuaScripts

AppendKind = Literal["start", "finish", "retry", "progress", "note"]


class ReclaimedEntry(msgspec.Struct, frozen=True):
    entry_id: str
    previous_owner: str
    idle_ms: int
    delivery_count: int
    runs_begun: int
    fields: dict[str, str]


class WorkerScripts(LuaScripts):
    def __init__(self, redis: Redis, keyspace: Keyspace) -> None:
        super().__init__(redis, keyspace, "taskflow.worker")
        self._owned_append = self.register("owned_append")
        self._renew_lease = self.register("renew_lease")
        self._reclaim = self.register("reclaim")

    async def owned_append(
        self,
        *,
        partition: int,
        dispatch_stream: str,
        consumer: str,
        entry_id: str,
        event_type: str,
        payload: bytes,
        kind: AppendKind,
        task_id: str,
        final_state: str = "",
        retry: tuple[HeldDispatch, int] | None = None,
        pipeline: Pipeline | None = None,
    ) -> str | None:
        """Append an event while ``consumer`` owns ``entry_id``; a ``finish`` also XACKs it,
        a ``retry`` also holds ``retry`` (the dispatch, its due time in ms) for later.

        Inside a pipeline the answer arrives with ``pipeline.execute()`` instead.
        """
        ks = self.keyspace
        held, due_ms = retry if retry is not None else (None, 0)
        script_keys = [
            dispatch_stream,
            ks.events(partition),
            ks.starts(partition),
            ks.held_due(partition),
            ks.held(partition),
            ks.task_marker(task_id, partition),
        ]
        args: list[EncodableT] = [
            WORKERS_GROUP,
            consumer,
            entry_id,
            event_type,
            payload,
            kind,
            due_ms,
            task_id,
            encode_held(held) if held else "",
            final_state,
        ]
        if pipeline is not None:
            # EVALSHA straight into the pipeline: a registered script would make every
            # pipeline.execute() ask SCRIPT EXISTS first, one more round trip per flush.
            # The caller loads the scripts (``load``) and again on NoScriptError.
            pipeline.evalsha(self._owned_append.sha, len(script_keys), *script_keys, *args)
            return None
        answer = await self._owned_append(keys=script_keys, args=args)
        return str(answer) if answer else None

    async def renew_lease(self, *, dispatch_stream: str, consumer: str, entry_ids: list[str]) -> set[str]:
        """Renew the lease of the given entries; returns those still owned."""
        if not entry_ids:
            return set()
        owned = await self._renew_lease(keys=[dispatch_stream], args=[WORKERS_GROUP, consumer, *entry_ids])
        return {str(i) for i in owned}

    async def reclaim(
        self, *, dispatch_stream: str, starts_hash: str, consumer: str, min_idle_ms: int, count: int
    ) -> list[ReclaimedEntry]:
        rows = await self._reclaim(
            keys=[dispatch_stream, starts_hash], args=[WORKERS_GROUP, consumer, min_idle_ms, count]
        )
        return [
            ReclaimedEntry(
                entry_id=str(row[0]),
                previous_owner=str(row[1]),
                idle_ms=int(row[2]),
                delivery_count=int(row[3]),
                runs_begun=int(row[4]),
                fields=pairs(row[5]),
            )
            for row in rows
        ]
