"""The coordinator's trim pass: keeps Redis memory bounded (ARCHITECTURE invariant 8).

Every ``TRIM_EVERY_S`` the coordinator trims, for the partitions it leads, the dispatch
streams (group ``workers``) and the event stream (group ``projector``, and the archive's
checkpoint in PostgreSQL) with ``XTRIM MINID ~``, at the MINID ``trimming.decide_minid``
chose. Without PostgreSQL the event streams wait; the dispatch streams need no archive.

Why no race can drop a pending entry although the decision and the XTRIM are two steps:
``group_cursors.lua`` reads each group's last-delivered id and its oldest pending entry in
one atomic step, and after that step a group's floor can only rise. XREADGROUP ``>`` hands
out only entries above the last-delivered id; XCLAIM / XAUTOCLAIM move entries that are
already pending; XACK only removes. So every entry below the floor read is delivered and
acknowledged, then and for good. The archive's checkpoint only advances too (the projector
moves it forward in its transaction), and a stale read of it is lower, so safer. TaskFlow
never moves a group back (XGROUP SETID) and creates its groups before anything is trimmed
(``ensure_groups`` at start); an operator who does either should stop the coordinator first.

Trimming takes no fencing token: it is safe whoever runs it, so a coordinator that lost its
lease a moment ago trims nothing it should not.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Collection, Sequence

import asyncpg
import msgspec
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from taskflow.coordinator.scripts import CoordinatorScripts
from taskflow.coordinator.trimming import archive_floor, decide_minid, format_stream_id, retention_floor
from taskflow.outage import POSTGRES_AWAY, REDIS_AWAY, Outage
from taskflow.projections import store
from taskflow.projections.store import StreamId
from taskflow.settings import NEVER_TRIM, Settings
from taskflow.streams.keyspace import PROJECTOR_GROUP, WORKERS_GROUP

log = structlog.get_logger()
# Often enough that a busy stream holds a few seconds of acknowledged entries beyond the
# retention window; each pass costs one script call per stream.
TRIM_EVERY_S = 5.0
# Entries one XTRIM may remove (Redis's own default for `~`), and calls per stream and pass:
# up to a million entries per stream every pass, in steps of a few milliseconds each.
TRIM_LIMIT = 10_000
MAX_TRIM_CALLS = 100


class Trimmed(msgspec.Struct, frozen=True):
    """Entries one pass removed, by kind of stream."""

    events: int = 0
    dispatch: int = 0


class Trimmer:
    def __init__(
        self, settings: Settings, redis: Redis, pool: asyncpg.Pool, scripts: CoordinatorScripts, redis_outage: Outage
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.pool = pool
        self.scripts = scripts
        self.keyspace = scripts.keyspace
        self.redis_outage = redis_outage
        self.postgres_outage = Outage("postgres")

    async def trim_forever(self, leading: Callable[[], Collection[int]], stopping: asyncio.Event) -> None:
        """A pass every TRIM_EVERY_S over the partitions ``leading()`` names, until stopped."""
        while True:
            # Wait first: at start the coordinator has not been elected to lead anything yet.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), TRIM_EVERY_S)
            if stopping.is_set():
                return
            try:
                await self.trim(sorted(leading()))
            except REDIS_AWAY as e:
                self.redis_outage.failed(e, during="trim")
            except RedisError as e:
                log.warning("trim_redis_error", error=str(e))

    async def trim(self, partitions: Sequence[int]) -> Trimmed:
        """Trim the streams of ``partitions`` as far as is safe; what it removed."""
        retention_s = self.settings.stream_retention_seconds
        if retention_s == NEVER_TRIM or not partitions:
            return Trimmed()
        archived = await self._archived()
        # Redis's clock: the one stream ids are made of.
        seconds, micros = await self.redis.time()
        keep_from = retention_floor(seconds * 1000 + micros // 1000, retention_s)
        dispatch = events = 0
        for p in partitions:
            for stream in self.keyspace.dispatch_streams(p):
                dispatch += await self._trim_stream(stream, WORKERS_GROUP, [keep_from])
            if archived is not None:
                floors = [keep_from, archive_floor(archived.get(p))]
                events += await self._trim_stream(self.keyspace.events(p), PROJECTOR_GROUP, floors)
        trimmed = Trimmed(events=events, dispatch=dispatch)
        if events or dispatch:
            log.info("streams_trimmed", events=events, dispatch=dispatch, partitions=list(partitions))
        return trimmed

    async def _archived(self) -> dict[int, StreamId] | None:
        """The archive's checkpoints, or None while PostgreSQL cannot say (event streams
        then keep everything: Redis may hold the only copy)."""
        try:
            archived = await store.archived_up_to(self.pool, self.keyspace.all_partitions)
        except POSTGRES_AWAY as e:
            self.postgres_outage.failed(e, during="trim")
            return None
        except asyncpg.PostgresError as e:  # an answer, not an outage: a missing table, ...
            log.warning("trim_checkpoints_unreadable", error=repr(e))
            return None
        self.postgres_outage.succeeded()
        return archived

    async def _trim_stream(self, stream: str, group: str, floors: list[StreamId | None]) -> int:
        minid = decide_minid(await self.scripts.group_cursors(stream), [group], floors)
        if minid is None:
            return 0
        # `~`: whole macro nodes only, so Redis never splits one; it may keep a few entries
        # below the MINID, never drop one at or above it. LIMIT bounds each call (Redis
        # serves nobody else meanwhile); a busy stream takes several.
        removed = 0
        for _ in range(MAX_TRIM_CALLS):
            answer = int(
                await self.redis.xtrim(stream, minid=format_stream_id(minid), approximate=True, limit=TRIM_LIMIT)
            )
            removed += answer
            if answer == 0:
                break
        return removed
