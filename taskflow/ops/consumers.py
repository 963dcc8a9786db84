"""The consumers of every group, and the pruning of those that are gone: no pending entry
left and idle past the point where their worker counts as dead."""

from __future__ import annotations

from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from taskflow.ops.scripts import OpsScripts
from taskflow.ops.streams import stream_names
from taskflow.streams.keyspace import Keyspace


class ConsumerInfo(msgspec.Struct, frozen=True, kw_only=True):
    stream: str
    key: str
    group: str
    name: str
    pending: int
    # Since the consumer's last attempt to read or claim (XINFO CONSUMERS idle).
    idle_ms: int
    # Since its last successful read or claim: Redis 7.2 and later only.
    inactive_ms: int | None


class Pruned(msgspec.Struct, kw_only=True):
    consumer: ConsumerInfo
    # False when the consumer read or claimed something between listing and deleting.
    deleted: bool


def prunable(consumers: list[ConsumerInfo], min_idle_ms: int) -> list[ConsumerInfo]:
    """The consumers safe to delete: holding NO pending entry (XGROUP DELCONSUMER would
    drop those entries, never to be delivered again) and idle longer than ``min_idle_ms``.
    Idle, not inactive: a live worker blocked on an empty stream keeps its idle time low
    while its inactive time grows."""
    return [c for c in consumers if c.pending == 0 and c.idle_ms > min_idle_ms]


async def list_consumers(redis: Redis, keyspace: Keyspace) -> list[ConsumerInfo]:
    """Every consumer of every group of the namespace's streams (two round trips)."""
    names = stream_names(keyspace)
    async with redis.pipeline(transaction=False) as pipe:
        for key in names.values():
            pipe.xinfo_groups(key)
        answers: list[Any] = await pipe.execute(raise_on_error=False)
    groups = [
        (name, key, str(group["name"]))
        for (name, key), found in zip(names.items(), answers, strict=True)
        if not isinstance(found, ResponseError)  # the stream was never created
        for group in found
    ]
    if not groups:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for _, key, group in groups:
            pipe.xinfo_consumers(key, group)
        consumers: list[list[dict[str, Any]]] = await pipe.execute()
    return [
        ConsumerInfo(
            stream=name,
            key=key,
            group=group,
            name=str(c["name"]),
            pending=int(c["pending"]),
            idle_ms=int(c["idle"]),
            inactive_ms=None if c.get("inactive") is None else int(c["inactive"]),
        )
        for (name, key, group), found in zip(groups, consumers, strict=True)
        for c in found
    ]


async def prune(redis: Redis, keyspace: Keyspace, chosen: list[ConsumerInfo], min_idle_ms: int) -> list[Pruned]:
    """Delete the ``chosen`` consumers, each checked again in the same step (a script)."""
    scripts = OpsScripts(redis, keyspace)
    return [
        Pruned(
            consumer=c,
            deleted=await scripts.delete_idle_consumer(
                stream_key=c.key, group=c.group, consumer=c.name, min_idle_ms=min_idle_ms
            ),
        )
        for c in chosen
    ]
