"""``/api/v1/stats``: queue depth per priority, held tasks, and tasks by status.

Scoped like every read: a user counts their own tasks only. Queue depths, held tasks and
quarantined entries are figures of everyone's tasks, which cannot be split by owner, so
they are shown to admins only (null for a user).
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import get

from taskflow.events import PRIORITIES
from taskflow.gateway.context import Caller, Ctx, GatewayContext
from taskflow.streams.keyspace import WORKERS_GROUP


class QueueDepth(msgspec.Struct, kw_only=True):
    waiting: int  # on the stream, not yet claimed by a worker
    in_flight: int  # claimed by a worker (running, or held in its backlog)


class Stats(msgspec.Struct, kw_only=True):
    tasks_by_status: dict[str, int]  # the caller's own tasks; every task for an admin
    queues: dict[str, QueueDepth] | None  # admins only
    scheduled: int | None  # admins only: held for later (a future scheduled_at, a retry not yet due)
    # Admins only: stream entries that could not be projected or run (GET /api/v1/quarantine).
    quarantined: int | None = None


@get("/api/v1/stats")
async def stats(ctx: Ctx, principal: Caller) -> Stats:
    if not principal.sees_all:
        rows = await ctx.pool.fetch(
            "SELECT status, count(*) AS n FROM tasks WHERE created_by = $1 GROUP BY status", principal.sub
        )
        return Stats(tasks_by_status={r["status"]: r["n"] for r in rows}, queues=None, scheduled=None)
    queues, scheduled = await _queue_depths(ctx)
    rows = await ctx.pool.fetch("SELECT status, count(*) AS n FROM tasks GROUP BY status")
    quarantined = int(await ctx.pool.fetchval("SELECT count(*) FROM quarantined_entries"))
    return Stats(
        tasks_by_status={r["status"]: r["n"] for r in rows}, queues=queues, scheduled=scheduled, quarantined=quarantined
    )


async def _queue_depths(ctx: GatewayContext) -> tuple[dict[str, QueueDepth], int]:
    ks = ctx.keyspace
    async with ctx.redis.pipeline(transaction=False) as pipe:
        for p in ks.all_partitions:
            for level in PRIORITIES:
                stream = ks.dispatch(p, level)
                pipe.xlen(stream)
                pipe.xpending(stream, WORKERS_GROUP)
            pipe.zcard(ks.held_due(p))
        answers: list[Any] = await pipe.execute()
    queues: dict[str, QueueDepth] = {level: QueueDepth(waiting=0, in_flight=0) for level in PRIORITIES}
    scheduled = 0
    per_partition = 2 * len(PRIORITIES) + 1
    for p in ks.all_partitions:
        chunk = answers[p * per_partition : (p + 1) * per_partition]
        for i, level in enumerate(PRIORITIES):
            length, pending = int(chunk[2 * i]), int(chunk[2 * i + 1]["pending"])
            queues[level].waiting += length - pending  # acknowledged entries are deleted
            queues[level].in_flight += pending
        scheduled += int(chunk[-1])
    return queues, scheduled
