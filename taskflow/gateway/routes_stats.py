"""``/api/v1/stats``: queue depth per priority, held tasks, and tasks by status."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get
from litestar.datastructures import State

from taskflow import keys
from taskflow.events import PRIORITIES
from taskflow.gateway.auth import Principal
from taskflow.gateway.context import GatewayContext


class QueueDepth(msgspec.Struct, kw_only=True):
    waiting: int  # on the stream, not yet claimed by a worker
    in_flight: int  # claimed by a worker (running, or held in its backlog)


class Stats(msgspec.Struct, kw_only=True):
    queues: dict[str, QueueDepth]
    scheduled: int  # held for later: scheduled_at in the future, or a retry not yet due
    tasks_by_status: dict[str, int]


@get("/api/v1/stats")
async def stats(request: Request[Principal, str, State]) -> Stats:
    ctx: GatewayContext = request.app.state.ctx
    ns, partitions = ctx.settings.namespace, ctx.settings.partitions
    async with ctx.redis.pipeline(transaction=False) as pipe:
        for p in range(partitions):
            for level in PRIORITIES:
                stream = keys.dispatch(ns, p, level)
                pipe.xlen(stream)
                pipe.xpending(stream, keys.WORKERS_GROUP)
            pipe.zcard(keys.schedule(ns, p))
        answers: list[Any] = await pipe.execute()
    queues: dict[str, QueueDepth] = {level: QueueDepth(waiting=0, in_flight=0) for level in PRIORITIES}
    scheduled = 0
    per_partition = 2 * len(PRIORITIES) + 1
    for p in range(partitions):
        chunk = answers[p * per_partition : (p + 1) * per_partition]
        for i, level in enumerate(PRIORITIES):
            length, pending = int(chunk[2 * i]), int(chunk[2 * i + 1]["pending"])
            queues[level].waiting += length - pending  # acknowledged entries are deleted
            queues[level].in_flight += pending
        scheduled += int(chunk[-1])
    rows = await ctx.pool.fetch("SELECT status, count(*) AS n FROM tasks GROUP BY status")
    return Stats(queues=queues, scheduled=scheduled, tasks_by_status={r["status"]: r["n"] for r in rows})
