"""A live view of the streams (``taskflow streams top``): entries in and out per second,
lag and its trend, the oldest pending entry, and the workers' heartbeats.

Redis is read into a ``Sample`` of counters (``take_sample``); everything shown is
computed from samples by pure functions (``flows``, ``lag_trend``, ``snapshot``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from taskflow.ops.streams import stream_names
from taskflow.streams.keyspace import Keyspace

Trend = Literal["rising", "falling", "flat"]

# Samples the lag trend looks back over (the current one included).
TREND_SAMPLES = 5


class GroupCounters(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    # Entries the group has delivered at least once (XINFO GROUPS entries-read, Redis 7);
    # None when Redis cannot tell.
    entries_read: int | None
    pending: int
    lag: int | None
    oldest_pending_id: str | None


class StreamCounters(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    # Entries ever appended (XINFO STREAM entries-added): unlike the length, trimming
    # does not lower it, so its change is what came in.
    entries_added: int
    groups: tuple[GroupCounters, ...]


class WorkerBeat(msgspec.Struct, frozen=True, kw_only=True):
    worker_id: str
    partition: int
    last_heartbeat_ms: int
    # From the heartbeat hash, which expires three beats after a worker went silent.
    status: str | None
    load: int | None
    capacity: int | None


class Sample(msgspec.Struct, frozen=True, kw_only=True):
    # Redis's clock (TIME), so ages do not depend on this machine's clock.
    taken_ms: int
    streams: tuple[StreamCounters, ...]
    workers: tuple[WorkerBeat, ...]


class StreamFlow(msgspec.Struct, kw_only=True):
    stream: str
    group: str | None
    in_per_s: float | None
    out_per_s: float | None
    pending: int
    lag: int | None
    lag_trend: Trend | None
    oldest_pending_age_ms: int | None


class WorkerView(msgspec.Struct, kw_only=True):
    worker_id: str
    partition: int
    heartbeat_age_ms: int
    status: str | None
    load: int | None
    capacity: int | None


class TopSnapshot(msgspec.Struct, kw_only=True):
    taken_ms: int
    interval_s: float
    streams: list[StreamFlow]
    workers: list[WorkerView]


def per_second(before: int | None, after: int | None, seconds: float) -> float | None:
    """The rate of a counter between two samples; None when either value is unknown, no
    time passed, or the counter went down (the stream was deleted and made again)."""
    if before is None or after is None or seconds <= 0 or after < before:
        return None
    return (after - before) / seconds


def acknowledged(group: GroupCounters) -> int | None:
    """Entries the group has acknowledged so far. Every entry the group delivered
    (entries-read) is either still pending or was XACKed: claiming moves an entry between
    consumers and leaves it pending. So acked = entries-read - pending, and "out" is its
    change per second. (An entry dropped by XGROUP DELCONSUMER counts as acked: it left
    the group unprocessed, which `consumers --prune` never lets happen.)"""
    if group.entries_read is None:
        return None
    return group.entries_read - group.pending


def flows(before: Sample, after: Sample) -> list[StreamFlow]:
    """In and out per second of every stream and group between two samples, with the
    lag, pending and oldest pending age as of ``after`` (trend left to ``snapshot``)."""
    seconds = (after.taken_ms - before.taken_ms) / 1000
    earlier = {s.name: s for s in before.streams}
    found = []
    for stream in after.streams:
        old = earlier.get(stream.name)
        in_per_s = per_second(old.entries_added if old else None, stream.entries_added, seconds)
        old_groups = {g.name: g for g in old.groups} if old else {}
        if not stream.groups:
            found.append(_ungrouped(stream.name, in_per_s))
        for group in stream.groups:
            old_group = old_groups.get(group.name)
            found.append(
                StreamFlow(
                    stream=stream.name,
                    group=group.name,
                    in_per_s=in_per_s,
                    out_per_s=per_second(acknowledged(old_group) if old_group else None, acknowledged(group), seconds),
                    pending=group.pending,
                    lag=group.lag,
                    lag_trend=None,
                    oldest_pending_age_ms=_age_of(group.oldest_pending_id, after.taken_ms),
                )
            )
    return found


def _ungrouped(stream: str, in_per_s: float | None) -> StreamFlow:
    """A stream no group reads yet: only what comes in."""
    return StreamFlow(
        stream=stream,
        group=None,
        in_per_s=in_per_s,
        out_per_s=None,
        pending=0,
        lag=None,
        lag_trend=None,
        oldest_pending_age_ms=None,
    )


def lag_trend(lags: Sequence[int | None]) -> Trend | None:
    """Where the lag went over the samples given (oldest first): the sign of last - first
    of those known. None with fewer than two known values."""
    known = [lag for lag in lags if lag is not None]
    if len(known) < 2:
        return None
    if known[-1] > known[0]:
        return "rising"
    return "falling" if known[-1] < known[0] else "flat"


def snapshot(samples: Sequence[Sample]) -> TopSnapshot:
    """What ``top`` shows after the last of ``samples`` (at least two, oldest first)."""
    samples = list(samples)  # a deque (the caller's window) does not slice
    before, after = samples[-2], samples[-1]
    shown = flows(before, after)
    for flow in shown:
        flow.lag_trend = lag_trend([_lag_in(s, flow.stream, flow.group) for s in samples[-TREND_SAMPLES:]])
    workers = [
        WorkerView(
            worker_id=w.worker_id,
            partition=w.partition,
            heartbeat_age_ms=max(0, after.taken_ms - w.last_heartbeat_ms),
            status=w.status,
            load=w.load,
            capacity=w.capacity,
        )
        for w in after.workers
    ]
    workers.sort(key=lambda w: (-w.heartbeat_age_ms, w.worker_id))  # the most silent first
    return TopSnapshot(
        taken_ms=after.taken_ms,
        interval_s=(after.taken_ms - before.taken_ms) / 1000,
        streams=shown,
        workers=workers,
    )


def _lag_in(sample: Sample, stream: str, group: str | None) -> int | None:
    for s in sample.streams:
        if s.name == stream:
            return next((g.lag for g in s.groups if g.name == group), None)
    return None


def _age_of(entry_id: str | None, now_ms: int) -> int | None:
    """How long ago an entry was appended: the first part of its id is Redis's clock then."""
    if entry_id is None:
        return None
    return max(0, now_ms - int(entry_id.partition("-")[0]))


async def take_sample(redis: Redis, keyspace: Keyspace) -> Sample:
    """Every stream's counters, then the oldest pending entry of each group holding some,
    then the workers: three pipelined round trips."""
    names = stream_names(keyspace)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.time()
        for key in names.values():
            pipe.xinfo_stream(key)
            pipe.xinfo_groups(key)
        answers: list[Any] = await pipe.execute(raise_on_error=False)
    seconds, micros = answers[0]
    taken_ms = int(seconds) * 1000 + int(micros) // 1000
    read: list[tuple[str, str, int, list[dict[str, Any]]]] = []
    for i, (name, key) in enumerate(names.items()):
        info, groups = answers[1 + 2 * i : 3 + 2 * i]
        if isinstance(info, ResponseError):  # never created: nothing to show
            continue
        read.append((name, key, int(info["entries-added"]), [] if isinstance(groups, Exception) else groups))
    oldest = await _oldest_pending(redis, [(key, str(g["name"])) for _, key, _, gs in read for g in gs if g["pending"]])
    streams = tuple(
        StreamCounters(
            name=name,
            entries_added=added,
            groups=tuple(_counters(g, oldest.get((key, str(g["name"])))) for g in groups),
        )
        for name, key, added, groups in read
    )
    return Sample(taken_ms=taken_ms, streams=streams, workers=await _worker_beats(redis, keyspace))


def _counters(raw: dict[str, Any], oldest_pending_id: str | None) -> GroupCounters:
    entries_read, lag = raw.get("entries-read"), raw.get("lag")
    return GroupCounters(
        name=str(raw["name"]),
        entries_read=None if entries_read is None else int(entries_read),
        pending=int(raw["pending"]),
        lag=None if lag is None else int(lag),
        oldest_pending_id=oldest_pending_id,
    )


async def _oldest_pending(redis: Redis, groups: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(stream key, group) -> the smallest pending id (the XPENDING summary's ``min``)."""
    if not groups:
        return {}
    async with redis.pipeline(transaction=False) as pipe:
        for key, group in groups:
            pipe.xpending(key, group)
        answers: list[Any] = await pipe.execute()
    return {g: str(a["min"]) for g, a in zip(groups, answers, strict=True) if a and a.get("min")}


async def _worker_beats(redis: Redis, keyspace: Keyspace) -> tuple[WorkerBeat, ...]:
    """Workers in every partition's registry, with their heartbeat hash where it lasts."""
    registered: list[tuple[int, str, int]] = []
    for p in keyspace.all_partitions:
        for worker_id, score in await redis.zrange(keyspace.worker_registry(p), 0, -1, withscores=True):
            registered.append((p, str(worker_id), int(score)))
    if not registered:
        return ()
    async with redis.pipeline(transaction=False) as pipe:
        for _, worker_id, _ in registered:
            pipe.hgetall(keyspace.worker_heartbeat(worker_id))
        beats: list[dict[str, str]] = await pipe.execute()
    return tuple(
        WorkerBeat(
            worker_id=worker_id,
            partition=p,
            last_heartbeat_ms=max(score, _int(beat.get("last_heartbeat_ms")) or 0),
            status=beat.get("status"),
            load=_int(beat.get("load")),
            capacity=_int(beat.get("capacity")),
        )
        for (p, worker_id, score), beat in zip(registered, beats, strict=True)
    )


def _int(value: str | None) -> int | None:
    return None if value is None else int(value)
