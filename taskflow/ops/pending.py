"""Pending entries by task id: who holds each, for how long, how often it was delivered
and how many runs of it began; which look like poison, and which a reclaim would take."""

from __future__ import annotations

from typing import Any

import msgspec
from redis.asyncio import Redis

from taskflow.events import EventDecodeError, decode
from taskflow.ops.streams import stream_names
from taskflow.streams.keyspace import PROJECTOR_GROUP, WORKERS_GROUP, Keyspace

# Upper bounds (ms) of the age histogram's buckets, and their labels.
AGE_BUCKETS: tuple[tuple[int | None, str], ...] = (
    (1_000, "< 1 s"),
    (10_000, "< 10 s"),
    (60_000, "< 1 min"),
    (600_000, "< 10 min"),
    (3_600_000, "< 1 h"),
    (None, ">= 1 h"),
)


class PendingEntry(msgspec.Struct, kw_only=True):
    stream: str
    group: str
    entry_id: str
    task_id: str | None
    consumer: str
    idle_ms: int
    deliveries: int
    # Runs begun (dispatch entries only): what decides poison (invariant 5).
    runs_begun: int | None
    likely_poison: bool
    reclaimable: bool


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    max_deliveries: int
    lease_ms: int


def judge(idle_ms: int, deliveries: int, runs_begun: int | None, limits: Limits) -> tuple[bool, bool]:
    """(likely poison, a reclaim would take it now). Poison: one more begun run and it
    is dead-lettered (or, for a projector entry, delivered that often already)."""
    count = runs_begun if runs_begun is not None else deliveries
    return count >= max(1, limits.max_deliveries - 1), idle_ms >= limits.lease_ms


def age_histogram(entries: list[PendingEntry]) -> list[tuple[str, int]]:
    counts = [0] * len(AGE_BUCKETS)
    for entry in entries:
        for i, (bound, _) in enumerate(AGE_BUCKETS):
            if bound is None or entry.idle_ms < bound:
                counts[i] += 1
                break
    return [(label, n) for (_, label), n in zip(AGE_BUCKETS, counts, strict=True)]


async def pending_entries(
    redis: Redis,
    keyspace: Keyspace,
    limits: Limits,
    *,
    streams: list[str] | None = None,
    consumer: str | None = None,
    min_idle_ms: int = 0,
    count: int = 1000,
) -> list[PendingEntry]:
    """Up to ``count`` pending entries per stream (all streams, or those named), oldest
    first, with their task ids. Unknown stream names raise ``KeyError``."""
    names = stream_names(keyspace)
    chosen = {name: names[name] for name in (streams or list(names))}
    found: list[PendingEntry] = []
    for name, key in chosen.items():
        group = PROJECTOR_GROUP if name.startswith("events:") else WORKERS_GROUP
        if not await redis.exists(key):
            continue
        rows = await redis.xpending_range(
            key, group, min="-", max="+", count=count, consumername=consumer, idle=min_idle_ms or None
        )
        if not rows:
            continue
        partition = int(name.split(":")[1])
        async with redis.pipeline(transaction=False) as pipe:
            for row in rows:
                pipe.xrange(key, min=row["message_id"], max=row["message_id"], count=1)
                pipe.hget(keyspace.starts(partition), row["message_id"])
            answers: list[Any] = await pipe.execute()
        for i, row in enumerate(rows):
            entries, begun = answers[2 * i], answers[2 * i + 1]
            fields = entries[0][1] if entries else {}
            runs = int(begun) if begun is not None else (0 if group == WORKERS_GROUP else None)
            poison, reclaimable = judge(int(row["time_since_delivered"]), int(row["times_delivered"]), runs, limits)
            found.append(
                PendingEntry(
                    stream=name,
                    group=group,
                    entry_id=str(row["message_id"]),
                    task_id=_task_id(fields),
                    consumer=str(row["consumer"]),
                    idle_ms=int(row["time_since_delivered"]),
                    deliveries=int(row["times_delivered"]),
                    runs_begun=runs,
                    likely_poison=poison,
                    reclaimable=reclaimable,
                )
            )
    return found


def _task_id(fields: dict[str, str]) -> str | None:
    """A dispatch entry names its task; an events entry is an event of some aggregate."""
    if "task_id" in fields:
        return fields["task_id"]
    if "data" in fields:
        try:
            return decode("0-0", fields["data"].encode()).aggregate_id
        except EventDecodeError:
            return None
    return None
