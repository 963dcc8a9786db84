"""The Lua scripts, registered once per client, with one typed wrapper each.

Every key reaches a script through ``KEYS`` and all keys of one call share a ``{p}`` hash
tag, so the scripts run unchanged on Redis Cluster (ARCHITECTURE invariant 7).
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any, Literal

import msgspec
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript

from taskflow import keys
from taskflow.events import Priority


def _source(name: str) -> str:
    return files("taskflow.lua").joinpath(f"{name}.lua").read_text()


class SubmitOutcome(msgspec.Struct, frozen=True):
    created: bool
    event_id: str
    fingerprint: str


class ReclaimedEntry(msgspec.Struct, frozen=True):
    entry_id: str
    previous_owner: str
    idle_ms: int
    delivery_count: int
    runs_begun: int
    fields: dict[str, str]


AppendKind = Literal["start", "finish", "note"]


class Scripts:
    """Holds the registered scripts of one Redis client."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._submit: AsyncScript = redis.register_script(_source("submit"))
        self._owned_append: AsyncScript = redis.register_script(_source("owned_append"))
        self._renew_lease: AsyncScript = redis.register_script(_source("renew_lease"))
        self._reclaim: AsyncScript = redis.register_script(_source("reclaim"))
        self._projector_read: AsyncScript = redis.register_script(_source("projector_read"))

    async def submit(
        self,
        *,
        ns: str,
        partition: int,
        priority: Priority,
        task_id: str,
        event_type: str,
        payload: bytes,
        fingerprint: str,
        marker_ttl_seconds: int,
        dispatch_now: bool,
    ) -> SubmitOutcome:
        result: list[Any] = await self._submit(
            keys=[
                keys.events(ns, partition),
                keys.dispatch(ns, partition, priority),
                keys.task_marker(ns, partition, task_id),
            ],
            args=[event_type, payload, task_id, fingerprint, marker_ttl_seconds, "1" if dispatch_now else "0"],
        )
        return SubmitOutcome(created=bool(result[0]), event_id=str(result[1]), fingerprint=str(result[2] or ""))

    async def owned_append(
        self,
        *,
        dispatch_stream: str,
        events_stream: str,
        consumer: str,
        entry_id: str,
        starts_hash: str,
        event_type: str,
        payload: bytes,
        kind: AppendKind,
        pipeline: Pipeline | None = None,
    ) -> str | None:
        """Append an event while ``consumer`` owns ``entry_id``; a ``finish`` also XACKs it.

        Inside a pipeline the answer arrives with ``pipeline.execute()`` instead.
        """
        answer = await self._owned_append(
            keys=[dispatch_stream, events_stream, starts_hash],
            args=[keys.WORKERS_GROUP, consumer, entry_id, event_type, payload, kind],
            client=pipeline,
        )
        return None if pipeline is not None or not answer else str(answer)

    async def renew_lease(self, *, dispatch_stream: str, consumer: str, entry_ids: list[str]) -> set[str]:
        """Renew the lease of the given entries; returns those still owned."""
        if not entry_ids:
            return set()
        owned = await self._renew_lease(keys=[dispatch_stream], args=[keys.WORKERS_GROUP, consumer, *entry_ids])
        return {str(i) for i in owned}

    async def reclaim(
        self, *, dispatch_stream: str, starts_hash: str, consumer: str, min_idle_ms: int, count: int
    ) -> list[ReclaimedEntry]:
        rows = await self._reclaim(
            keys=[dispatch_stream, starts_hash], args=[keys.WORKERS_GROUP, consumer, min_idle_ms, count]
        )
        return [
            ReclaimedEntry(
                entry_id=str(row[0]),
                previous_owner=str(row[1]),
                idle_ms=int(row[2]),
                delivery_count=int(row[3]),
                runs_begun=int(row[4]),
                fields=_pairs(row[5]),
            )
            for row in rows
        ]

    async def projector_read(
        self, *, lock_key: str, stream: str, token: str, consumer: str, count: int, start_id: str
    ) -> list[tuple[str, dict[str, str]]]:
        """XREADGROUP for the projector, refused (``LockLost``) once its lock moved on."""
        answer = await self._projector_read(
            keys=[lock_key, stream], args=[token, keys.PROJECTOR_GROUP, consumer, count, start_id]
        )
        if answer is None:
            raise LockLost(lock_key)
        return [(str(entry_id), _pairs(fields)) for entry_id, fields in answer]


class LockLost(Exception):
    """Raised by ``projector_read`` when the caller no longer holds the partition lock."""


def _pairs(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))
