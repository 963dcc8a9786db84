"""The one ordered history: every event after a position, stitched from the PostgreSQL
archive and the Redis stream with no gap and no repeat at the seam.

The projector commits archive rows and its checkpoint in one transaction, and the
coordinator trims a stream only below its checkpoint, so per partition:

1. read the checkpoint C, then the archive up to C: everything at or below C is there;
2. then read Redis after the cursor, a page at a time. Trimming removes a prefix of the
   stream, so entries after the cursor can be missing from Redis only when the stream's
   first entry lies after the cursor; each page is read together with that first entry
   (one MULTI), and only then is the gap between the cursor and the page filled from
   the archive (what was trimmed was archived first).

A cursor moves over every entry read, shown or filtered out, so nothing comes twice.
Partitions are merged by position (ms, seq, partition): one Redis clock orders them.
"""

from __future__ import annotations

import heapq
from collections.abc import AsyncIterator
from typing import Any, Protocol

import msgspec
from redis.asyncio import Redis

from taskflow.archive import PROJECTION
from taskflow.events import AnyEvent, EventDecodeError, decode
from taskflow.replay.position import Position, after_in, position_of
from taskflow.streams.keyspace import Keyspace

PAGE = 500
# The largest number an archive column (BIGINT) holds: ids above it never reach the archive.
ARCHIVE_MAX = 2**63 - 1
Item = tuple[Position, AnyEvent]


class Rows(Protocol):
    """What the history needs of PostgreSQL: an asyncpg pool, or the gateway's bounded one."""

    async def fetch(self, query: str, *args: object) -> list[Any]: ...

    async def fetchrow(self, query: str, *args: object) -> Any: ...


class EventFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Which events a reader wants. Times are stream-id times (when Redis appended the
    event, ms since the epoch): ``since_ms`` inclusive, ``until_ms`` exclusive."""

    aggregate_id: str | None = None
    types: frozenset[str] = frozenset()
    correlation_id: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None

    def wants(self, event: AnyEvent, tag: str) -> bool:
        return (
            (self.aggregate_id is None or event.aggregate_id == self.aggregate_id)
            and (not self.types or tag in self.types)
            and (self.correlation_id is None or event.correlation_id == self.correlation_id)
        )


class Tally(msgspec.Struct, kw_only=True):
    """What a read met besides the events it yielded."""

    # Entries that do not decode as any event this code knows (newer writer, corruption):
    # skipped here; the projector quarantines the ones in Redis.
    undecodable: int = 0


EVERYTHING = EventFilter()


async def events_after(
    redis: Redis,
    rows: Rows,
    keyspace: Keyspace,
    position: Position,
    selection: EventFilter = EVERYTHING,
    *,
    page: int = PAGE,
    tally: Tally | None = None,
) -> AsyncIterator[Item]:
    """Every event after ``position`` that ``selection`` wants, in order, up to about
    now (or up to ``selection.until_ms``)."""
    tally = tally if tally is not None else Tally()
    if selection.since_ms is not None and (selection.since_ms, 0, -1) > position:
        position = Position(selection.since_ms, 0, -1)
    partitions = (
        [keyspace.partition_of(selection.aggregate_id)]
        if selection.aggregate_id is not None
        else list(keyspace.all_partitions)
    )
    reader = _PartitionHistory(redis, rows, keyspace, selection, page, tally)
    sources = [reader.after(p, position) for p in partitions]
    if len(sources) == 1:
        async for only in sources[0]:
            yield only
        return
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


async def checkpoint_of(rows: Rows, partition: int) -> tuple[int, int]:
    """The archive's high-water mark in ``partition``: every event at or below it is archived."""
    found = await rows.fetchrow(
        "SELECT last_ms, last_seq FROM projection_checkpoints WHERE projection = $1 AND partition = $2",
        PROJECTION,
        partition,
    )
    return (0, 0) if found is None else (int(found["last_ms"]), int(found["last_seq"]))


class _PartitionHistory:
    def __init__(
        self, redis: Redis, rows: Rows, keyspace: Keyspace, selection: EventFilter, page: int, tally: Tally
    ) -> None:
        self.redis = redis
        self.rows = rows
        self.keyspace = keyspace
        self.selection = selection
        self.page = page
        self.tally = tally
        until = selection.until_ms
        # The last stream id a read may return, for the archive and for XRANGE.
        self.high = (until - 1, ARCHIVE_MAX) if until is not None else (ARCHIVE_MAX, ARCHIVE_MAX)
        self.redis_high = f"{until - 1}-{2**64 - 1}" if until is not None else "+"

    async def after(self, partition: int, position: Position) -> AsyncIterator[Item]:
        start = after_in(position, partition)
        # The cursor: the last stream id consumed; "inclusive" when the start id itself is
        # still wanted (the same id in a later partition than the position's).
        cursor = (position.ms, position.seq)
        inclusive = not start.startswith("(")
        seam = min(await checkpoint_of(self.rows, partition), self.high)
        if seam > cursor or (seam == cursor and inclusive):
            async for item in self._archived(partition, cursor, inclusive, seam):
                yield item
                cursor, inclusive = (item[0].ms, item[0].seq), False
            # The archive held nothing wanted after the cursor up to the seam.
            if seam > cursor:
                cursor, inclusive = seam, False
        async for item in self._tail(partition, cursor, inclusive):
            yield item

    async def _tail(self, partition: int, cursor: tuple[int, int], inclusive: bool) -> AsyncIterator[Item]:
        stream = self.keyspace.events(partition)
        high = self.redis_high
        while cursor <= self.high:
            low = f"{cursor[0]}-{cursor[1]}" if inclusive else f"({cursor[0]}-{cursor[1]}"
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xrange(stream, min=low, max=high, count=self.page)
                pipe.xrange(stream, min="-", max="+", count=1)
                entries, first = await pipe.execute()
            head = _id_of(first[0][0]) if first else None
            if head is None or head > cursor:
                # Entries after the cursor may have been trimmed: they are archived.
                gap_end = _id_of(entries[0][0]) if entries else self.high
                filled = False
                async for archived in self._archived(partition, cursor, inclusive, gap_end, before_end=bool(entries)):
                    filled = True
                    yield archived
                    cursor, inclusive = (archived[0].ms, archived[0].seq), False
                if not entries:
                    if filled:
                        continue  # look again after what the archive gave
                    return
            for entry_id, fields in entries:
                cursor, inclusive = _id_of(entry_id), False
                decoded = self._decoded(partition, entry_id, fields)
                if decoded is not None:
                    yield decoded
            if len(entries) < self.page:
                return

    def _decoded(self, partition: int, entry_id: str, fields: dict[str, str]) -> Item | None:
        tag = fields.get("type", "")
        selection = self.selection
        if selection.types and tag not in selection.types:
            return None
        try:
            event = decode(entry_id, fields["data"].encode())
        except (KeyError, EventDecodeError):
            self.tally.undecodable += 1
            return None
        if not selection.wants(event, tag):
            return None
        return position_of(entry_id, partition), event

    async def _archived(
        self,
        partition: int,
        low: tuple[int, int],
        inclusive: bool,
        high: tuple[int, int],
        *,
        before_end: bool = False,
    ) -> AsyncIterator[Item]:
        """Archived events of the partition in (low, high] ([low, …] when ``inclusive``;
        […, high) with ``before_end``), in stream order, a page per query."""
        selection = self.selection
        conditions, args = filter_sql(selection, 6)
        upper = "<" if before_end else "<="
        while True:
            lower = ">=" if inclusive else ">"
            query = (
                "SELECT event_id, id_ms, id_seq, payload FROM event_archive WHERE partition = $1 "
                f"AND (id_ms, id_seq) {lower} ($2, $3) AND (id_ms, id_seq) {upper} ($4, $5) "
                f"{conditions} ORDER BY id_ms, id_seq LIMIT $6"
            )
            found = await self.rows.fetch(query, partition, low[0], low[1], high[0], high[1], self.page, *args)
            for row in found:
                try:
                    event = decode(row["event_id"], _bytes(row["payload"]))
                except EventDecodeError:
                    self.tally.undecodable += 1
                    continue
                yield position_of(row["event_id"], partition), event
            if len(found) < self.page:
                return
            low, inclusive = (int(found[-1]["id_ms"]), int(found[-1]["id_seq"])), False


def filter_sql(selection: EventFilter, taken: int, *, times: bool = False) -> tuple[str, list[object]]:
    """The filter as ``AND …`` conditions on event_archive, numbered after ``taken``
    parameters; with ``times``, the time range too (else the caller bounds the ids)."""
    conditions: list[str] = []
    args: list[object] = []

    def condition(sql: str, value: object) -> None:
        args.append(value)
        conditions.append(sql.format(f"${taken + len(args)}"))

    if selection.aggregate_id is not None:
        condition("AND aggregate_id = {}", selection.aggregate_id)
    if selection.types:
        condition("AND event_type = ANY({}::text[])", sorted(selection.types))
    if selection.correlation_id is not None:
        condition("AND correlation_id = {}", selection.correlation_id)
    if times and selection.since_ms is not None:
        condition("AND id_ms >= {}", selection.since_ms)
    if times and selection.until_ms is not None:
        condition("AND id_ms < {}", selection.until_ms)
    return " ".join(conditions), args


def _bytes(payload: str | bytes) -> bytes:
    return payload if isinstance(payload, bytes) else payload.encode()


def _id_of(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


async def _next(source: AsyncIterator[Item]) -> Item | None:
    try:
        return await anext(source)
    except StopAsyncIteration:
        return None
