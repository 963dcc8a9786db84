"""``taskflow.replay`` for programs and notebooks: the event history as typed events, and
the state of tasks and workers at any moment.

    async with History.open() as history:          # settings from TASKFLOW_* variables
        async for event in history.events(aggregate=task_id):
            print(event.event_id, type(event).__name__)
        snapshot = await history.as_of(datetime(2026, 12, 6, 10, 3, tzinfo=UTC))
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Final

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from taskflow.database import open_pool
from taskflow.errors import TaskFlowError
from taskflow.events import EVENT_TYPES, AnyEvent
from taskflow.replay.as_of import Snapshot, StateFold
from taskflow.replay.history import EventFilter, Rows, Tally, events_after, filter_sql
from taskflow.replay.position import START, Position
from taskflow.settings import Settings, load_settings
from taskflow.streams.connection import open_redis
from taskflow.streams.keyspace import PROJECTOR_GROUP, Keyspace

EVENT_TAGS: Final = frozenset(str(t.__struct_config__.tag) for t in EVENT_TYPES)
# Events folded per slice by ``as_of``.
FOLD_SLICE = 5_000
# A replay reads the archive in large pages: one round trip per this many events.
REPLAY_PAGE = 5_000


class UnknownEventType(TaskFlowError, ValueError):
    """A filter named an event type that does not exist."""


def event_filter(
    *,
    aggregate: str | None = None,
    types: Iterable[str] = (),
    correlation_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> EventFilter:
    """A filter from what people pass: event type names (``task.started``), aware
    datetimes (naive ones are taken as UTC)."""
    wanted = frozenset(types)
    unknown = sorted(wanted - EVENT_TAGS)
    if unknown:
        raise UnknownEventType(f"unknown event type {', '.join(unknown)}; known: {', '.join(sorted(EVENT_TAGS))}")
    return EventFilter(
        aggregate_id=aggregate,
        types=wanted,
        correlation_id=correlation_id,
        since_ms=None if since is None else _ms(since),
        until_ms=None if until is None else _ms(until),
    )


class History:
    """The archive and the live stream tail read as one ordered history."""

    def __init__(self, redis: Redis, rows: Rows, keyspace: Keyspace) -> None:
        self.redis = redis
        self.rows = rows
        self.keyspace = keyspace
        # What the last read skipped (events this code cannot decode).
        self.tally = Tally()

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, settings: Settings | None = None) -> AsyncIterator[History]:
        """Connect with ``settings`` (default: from the ``TASKFLOW_*`` environment)."""
        settings = settings or load_settings(os.environ)
        redis = await open_redis(settings)
        try:
            pool: asyncpg.Pool = await open_pool(settings, min_size=1, max_size=2)
            try:
                yield cls(redis, pool, Keyspace.of(settings))
            finally:
                await pool.close()
        finally:
            await redis.aclose()

    async def events(
        self,
        *,
        aggregate: str | None = None,
        types: Iterable[str] = (),
        correlation_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> AsyncIterator[AnyEvent]:
        """Every event the filters select, oldest first, each with its ``event_id``.
        ``since`` (inclusive) and ``until`` (exclusive) compare with the time Redis
        appended the event (its stream id)."""
        selection = event_filter(
            aggregate=aggregate, types=types, correlation_id=correlation_id, since=since, until=until
        )
        async for _, event in self.positioned(selection):
            yield event

    async def positioned(
        self, selection: EventFilter, after: Position = START
    ) -> AsyncIterator[tuple[Position, AnyEvent]]:
        """``events`` with each event's position (partition included), from a filter."""
        self.tally = Tally()
        async for item in events_after(
            self.redis, self.rows, self.keyspace, after, selection, page=REPLAY_PAGE, tally=self.tally
        ):
            yield item

    async def estimate(self, selection: EventFilter) -> int:
        """About how many events ``selection`` reads (for a progress bar): the archived
        ones exactly, plus every entry not archived yet."""
        conditions, args = filter_sql(selection, 0, times=True)
        row = await self.rows.fetchrow(f"SELECT count(*) AS n FROM event_archive WHERE TRUE {conditions}", *args)
        archived = int(row["n"]) if row is not None else 0
        return archived + await self._not_archived()

    async def _not_archived(self) -> int:
        """Entries the projector has not acknowledged, hence maybe not archived yet."""
        total = 0
        for p in self.keyspace.all_partitions:
            with contextlib.suppress(RedisError):
                for group in await self.redis.xinfo_groups(self.keyspace.events(p)):
                    if group["name"] == PROJECTOR_GROUP:
                        total += int(group.get("lag") or 0) + int(group["pending"])
        return total

    async def as_of(self, when: datetime, *, aggregate: str | None = None) -> Snapshot:
        """Tasks and workers as they stood at ``when`` (events appended at or before it),
        of one aggregate only when given."""
        selection = EventFilter(aggregate_id=aggregate, until_ms=_ms(when) + 1)
        fold = StateFold()
        chunk: list[AnyEvent] = []
        async for _, event in self.positioned(selection):
            chunk.append(event)
            if len(chunk) >= FOLD_SLICE:
                fold.add(chunk)
                chunk = []
        fold.add(chunk)
        return fold.snapshot(when if when.tzinfo else when.replace(tzinfo=UTC))


def _ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)
