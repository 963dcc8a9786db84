"""Every stream of a namespace with its consumer groups: length, first and last id,
memory, and per group its consumers, pending entries, lag and last delivered id."""

from __future__ import annotations

from typing import Any, cast

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from taskflow.events import PRIORITIES
from taskflow.streams.keyspace import Keyspace


class GroupInfo(msgspec.Struct, kw_only=True):
    name: str
    consumers: int
    pending: int
    # Entries not yet delivered to the group; None when Redis cannot tell (after XDEL).
    lag: int | None
    last_delivered_id: str


class StreamInfo(msgspec.Struct, kw_only=True):
    # What the stream is for, as the CLI names it: "events:0", "dispatch:0:high".
    name: str
    key: str
    length: int
    first_id: str | None
    last_id: str | None
    memory_bytes: int | None
    groups: list[GroupInfo]


def stream_names(keyspace: Keyspace) -> dict[str, str]:
    """Every stream TaskFlow writes, by name: ``events:P`` and ``dispatch:P:PRIORITY``."""
    names: dict[str, str] = {}
    for p in keyspace.all_partitions:
        names[f"events:{p}"] = keyspace.events(p)
        for priority in PRIORITIES:
            names[f"dispatch:{p}:{priority}"] = keyspace.dispatch(p, priority)
    return names


async def describe(redis: Redis, keyspace: Keyspace) -> list[StreamInfo]:
    """One round trip per stream kind for the lot (pipelined)."""
    names = stream_names(keyspace)
    async with redis.pipeline(transaction=False) as pipe:
        for key in names.values():
            pipe.xinfo_stream(key)
            pipe.xinfo_groups(key)
            pipe.memory_usage(key)
        answers: list[Any] = await pipe.execute(raise_on_error=False)
    found = []
    for i, (name, key) in enumerate(names.items()):
        info, groups, memory = answers[3 * i : 3 * i + 3]
        if isinstance(info, ResponseError):  # no such key: the stream was never created
            found.append(
                StreamInfo(name=name, key=key, length=0, first_id=None, last_id=None, memory_bytes=None, groups=[])
            )
            continue
        found.append(
            StreamInfo(
                name=name,
                key=key,
                length=int(info["length"]),
                first_id=_entry_id(info.get("first-entry")),
                last_id=_entry_id(info.get("last-entry")),
                memory_bytes=None if isinstance(memory, Exception) or memory is None else int(memory),
                groups=[] if isinstance(groups, Exception) else [_group(g) for g in groups],
            )
        )
    return found


def _entry_id(entry: Any) -> str | None:
    if not entry:
        return None
    return str(cast("tuple[str, Any]", entry)[0])


def _group(raw: dict[str, Any]) -> GroupInfo:
    lag = raw.get("lag")
    return GroupInfo(
        name=str(raw["name"]),
        consumers=int(raw["consumers"]),
        pending=int(raw["pending"]),
        lag=None if lag is None else int(lag),
        last_delivered_id=str(raw["last-delivered-id"]),
    )
