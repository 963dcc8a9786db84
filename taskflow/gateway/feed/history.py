"""A feed's past: every event after a position, as one ordered history stitched from
the PostgreSQL archive (up to the projector's checkpoint, so also entries already trimmed
from Redis) and the Redis stream after it, with no gap and no repeat at the seam.

The projector commits archive rows and its checkpoint in one transaction, and nothing is
trimmed from Redis above the checkpoint, so reading the checkpoint first and then
(position, checkpoint] from the archive and (checkpoint, now] from Redis covers it all.
"""

from __future__ import annotations

import heapq
from collections.abc import AsyncIterator

from taskflow.events import AnyEvent, EventDecodeError, decode
from taskflow.gateway.context import GatewayContext
from taskflow.gateway.feed.position import Position, after_in, position_of
from taskflow.projections.store import PROJECTION

PAGE = 500
Item = tuple[Position, AnyEvent]


async def events_after(ctx: GatewayContext, position: Position, task_id: str | None = None) -> AsyncIterator[Item]:
    """Every event after ``position`` (of ``task_id`` only, when given), in order,
    up to about now; the live tail takes over from there."""
    partitions = [ctx.keyspace.partition_of(task_id)] if task_id is not None else list(ctx.keyspace.all_partitions)
    sources = [_partition_after(ctx, p, position, task_id) for p in partitions]
    if len(sources) == 1:
        async for only in sources[0]:
            yield only
        return
    # Merge the partitions by position, one head from each at a time.
    heads: list[tuple[Position, int, AnyEvent]] = []
    for i, source in enumerate(sources):
        item = await _next(source)
        if item is not None:
            heads.append((item[0], i, item[1]))
    heapq.heapify(heads)
    while heads:
        at, i, event = heapq.heappop(heads)
        yield at, event
        item = await _next(sources[i])
        if item is not None:
            heapq.heappush(heads, (item[0], i, item[1]))


async def _partition_after(
    ctx: GatewayContext, partition: int, position: Position, task_id: str | None
) -> AsyncIterator[Item]:
    checkpoint = await ctx.pool.fetchrow(
        "SELECT last_ms, last_seq FROM projection_checkpoints WHERE projection = $1 AND partition = $2",
        PROJECTION,
        partition,
    )
    seam = (0, 0) if checkpoint is None else (int(checkpoint["last_ms"]), int(checkpoint["last_seq"]))
    start = after_in(position, partition)
    inclusive = not start.startswith("(")
    low = (position.ms, position.seq)
    if seam > low or (seam == low and inclusive):
        async for item in _archived(ctx, partition, low, inclusive, seam, task_id):
            yield item
        start = f"({seam[0]}-{seam[1]}"  # after the seam
    async for item in _in_redis(ctx, partition, start, task_id):
        yield item


async def _archived(
    ctx: GatewayContext,
    partition: int,
    low: tuple[int, int],
    inclusive: bool,
    seam: tuple[int, int],
    task_id: str | None,
) -> AsyncIterator[Item]:
    of_task = "AND aggregate_id = $7" if task_id is not None else ""
    while True:
        compare = ">=" if inclusive else ">"
        query = (
            "SELECT event_id, id_ms, id_seq, payload FROM event_archive WHERE partition = $1 "
            f"AND (id_ms, id_seq) {compare} ($2, $3) AND (id_ms, id_seq) <= ($4, $5) {of_task} "
            "ORDER BY id_ms, id_seq LIMIT $6"
        )
        args: list[object] = [partition, low[0], low[1], seam[0], seam[1], PAGE]
        if task_id is not None:
            args.append(task_id)
        rows = await ctx.pool.fetch(query, *args)
        for row in rows:
            try:
                event = decode(row["event_id"], row["payload"].encode())
            except EventDecodeError:
                continue
            yield position_of(row["event_id"], partition), event
        if len(rows) < PAGE:
            return
        low, inclusive = (rows[-1]["id_ms"], rows[-1]["id_seq"]), False


async def _in_redis(ctx: GatewayContext, partition: int, start: str, task_id: str | None) -> AsyncIterator[Item]:
    stream = ctx.keyspace.events(partition)
    while True:
        page = await ctx.redis.xrange(stream, min=start, max="+", count=PAGE)
        for entry_id, fields in page:
            try:
                event = decode(entry_id, fields["data"].encode())
            except (KeyError, EventDecodeError):
                continue  # the projector quarantines it; a feed skips it
            if task_id is None or event.aggregate_id == task_id:
                yield position_of(entry_id, partition), event
        if len(page) < PAGE:
            return
        start = f"({page[-1][0]}"


async def _next(source: AsyncIterator[Item]) -> Item | None:
    try:
        return await anext(source)
    except StopAsyncIteration:
        return None
