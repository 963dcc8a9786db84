"""What ``taskflow reconcile`` reads: the archive's checkpoints and the unfinished tasks
from PostgreSQL (one snapshot), then the streams, groups and every trace of those tasks
from Redis. The decisions on it are ``reconcile``'s.

The order of the reads is what makes the verdict safe while the stack runs. PostgreSQL
first, in one REPEATABLE READ transaction, so the checkpoint and the task rows agree.
Then, per task: its marker, then the held and waiting entries, then the dispatch
streams, then the events above the checkpoint. Every move of a task in Redis appends an
event in the same step (promote.lua, owned_append.lua, cancel.lua), so a task that left
one place after we looked there and before we looked at the next shows up in that last
read, and is not judged lost.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from taskflow.archive import PROJECTION
from taskflow.ops.reconcile import (
    UNFINISHED_STATUSES,
    RedisTrace,
    Report,
    StreamId,
    StreamState,
    TaskCandidate,
    format_id,
    lost_tasks,
    missing_groups,
    parse_id,
    streams_behind,
)
from taskflow.ops.streams import stream_names
from taskflow.streams.keyspace import PROJECTOR_GROUP, WORKERS_GROUP, Keyspace

PAGE = 1000  # entries per XRANGE call, keys per pipeline


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    checkpoints: dict[int, StreamId]
    candidates: list[TaskCandidate]


class _Aggregate(msgspec.Struct):
    """The one field of a stored event the tail read needs."""

    aggregate_id: str


_aggregate = msgspec.json.Decoder(_Aggregate)


async def read_snapshot(pool: asyncpg.Pool, partitions: range) -> Snapshot:
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        rows = await conn.fetch(
            "SELECT partition, last_ms, last_seq FROM projection_checkpoints "
            "WHERE projection = $1 AND partition = ANY($2::int[])",
            PROJECTION,
            list(partitions),
        )
        tasks = await conn.fetch(
            "SELECT task_id::text, task_name, status, created_at, scheduled_at FROM tasks "
            "WHERE status = ANY($1::text[]) ORDER BY created_at, task_id",
            list(UNFINISHED_STATUSES),
        )
    return Snapshot(
        checkpoints={int(r["partition"]): (int(r["last_ms"]), int(r["last_seq"])) for r in rows},
        candidates=[
            TaskCandidate(
                task_id=t["task_id"],
                task_name=t["task_name"],
                status=t["status"],
                submitted_at=_utc(t["created_at"]),
                scheduled_at=None if t["scheduled_at"] is None else _utc(t["scheduled_at"]),
            )
            for t in tasks
        ],
    )


def _utc(moment: datetime) -> datetime:
    # The projections store UTC in TIMESTAMP columns (no zone).
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def read_streams(redis: Redis, keyspace: Keyspace, checkpoints: dict[int, StreamId]) -> list[StreamState]:
    """Every stream TaskFlow uses, pipelined: its last generated id and its groups."""
    names = stream_names(keyspace)
    async with redis.pipeline(transaction=False) as pipe:
        for key in names.values():
            pipe.xinfo_stream(key)
            pipe.xinfo_groups(key)
        answers: list[Any] = await pipe.execute(raise_on_error=False)
    events_keys = {keyspace.events(p): p for p in keyspace.all_partitions}
    found = []
    for i, (name, key) in enumerate(names.items()):
        info, groups = answers[2 * i : 2 * i + 2]
        exists = not isinstance(info, ResponseError)  # "no such key"
        p = events_keys.get(key)
        found.append(
            StreamState(
                name=name,
                key=key,
                exists=exists,
                last_generated_id=parse_id(str(info["last-generated-id"])) if exists else (0, 0),
                groups={} if not exists else {str(g["name"]): parse_id(str(g["last-delivered-id"])) for g in groups},
                required_group=WORKERS_GROUP if p is None else PROJECTOR_GROUP,
                # A partition never projected has archived nothing: its floor is 0-0.
                checkpoint=None if p is None else checkpoints.get(p, (0, 0)),
            )
        )
    return found


async def trace_tasks(
    redis: Redis, keyspace: Keyspace, candidates: list[TaskCandidate], checkpoints: dict[int, StreamId]
) -> dict[str, RedisTrace]:
    """What Redis still has of each candidate, in the order the module docstring gives."""
    ids = [c.task_id for c in candidates]
    markers = dict(zip(ids, await _each(redis, ids, lambda pipe, t: pipe.exists(keyspace.task_marker(t))), strict=True))
    unmarked = [t for t in ids if not markers[t]]
    held = await _each(redis, unmarked, lambda pipe, t: pipe.hexists(keyspace.held(keyspace.partition_of(t)), t))
    waiting = await _each(redis, unmarked, lambda pipe, t: pipe.zscore(keyspace.waiting(keyspace.partition_of(t)), t))
    in_dispatch = await _dispatched(redis, keyspace) if unmarked else set()
    touched = await _unprojected(redis, keyspace, checkpoints) if unmarked else set()
    present = RedisTrace(marker=True, in_dispatch=False, held=False, waiting=False, unprojected_events=False)
    traces = {t: present for t in ids if markers[t]}
    for t, is_held, score in zip(unmarked, held, waiting, strict=True):
        traces[t] = RedisTrace(
            marker=False,
            in_dispatch=t in in_dispatch,
            held=bool(is_held),
            waiting=score is not None,
            unprojected_events=t in touched,
        )
    return traces


async def _each(redis: Redis, items: list[str], command: Any) -> list[Any]:
    """``command(pipe, item)`` for every item, PAGE per round trip; the answers in order."""
    answers: list[Any] = []
    for start in range(0, len(items), PAGE):
        async with redis.pipeline(transaction=False) as pipe:
            for item in items[start : start + PAGE]:
                command(pipe, item)
            answers.extend(await pipe.execute())
    return answers


async def _dispatched(redis: Redis, keyspace: Keyspace) -> set[str]:
    """Task ids of every entry on a dispatch stream (waiting or being run): the whole
    streams, paged. A backlog of a million entries is a million small reads; this runs
    once per reconcile, and only when some unfinished task has no marker."""
    found: set[str] = set()
    for p in keyspace.all_partitions:
        for key in keyspace.dispatch_streams(p):
            async for fields in _entries(redis, key, "-"):
                found.add(str(fields.get("task_id", "")))
    return found


async def _unprojected(redis: Redis, keyspace: Keyspace, checkpoints: dict[int, StreamId]) -> set[str]:
    """Aggregates with an event above their partition's checkpoint (not archived yet)."""
    found: set[str] = set()
    for p in keyspace.all_partitions:
        after = "(" + format_id(checkpoints.get(p, (0, 0)))
        async for fields in _entries(redis, keyspace.events(p), after):
            try:
                found.add(_aggregate.decode(fields.get("data", "")).aggregate_id)
            except msgspec.DecodeError:
                continue  # an entry the projector will quarantine names no task we can judge
    return found


async def _entries(redis: Redis, key: str, start: str) -> AsyncIterator[dict[str, str]]:
    while True:
        page: list[tuple[str, dict[str, str]]] = await redis.xrange(key, min=start, max="+", count=PAGE)
        for _, fields in page:
            yield fields
        if len(page) < PAGE:
            return
        start = "(" + page[-1][0]


class Survey(msgspec.Struct, frozen=True, kw_only=True):
    report: Report
    candidates: list[TaskCandidate]


async def survey(redis: Redis, pool: asyncpg.Pool, keyspace: Keyspace) -> Survey:
    """Everything reconcile reports, read and decided; nothing written."""
    snapshot = await read_snapshot(pool, keyspace.all_partitions)
    streams = await read_streams(redis, keyspace, snapshot.checkpoints)
    traces = await trace_tasks(redis, keyspace, snapshot.candidates, snapshot.checkpoints)
    report = Report(
        deployment=keyspace.describe(),
        missing_groups=missing_groups(streams),
        streams_behind=streams_behind(streams),
        lost_tasks=lost_tasks(snapshot.candidates, traces),
        unjudged_tasks=sum(1 for t in traces.values() if t.unprojected_events and not t.marker),
    )
    return Survey(report=report, candidates=snapshot.candidates)
