"""Taking over the entries of dead workers (invariant 5): XAUTOCLAIM past the lease, and
each reclaimed entry recorded (TaskReclaimed) before it may start, or dead-lettered as
poison when too many runs of it began without an outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import structlog
from redis.exceptions import RedisError

from taskflow.outage import REDIS_AWAY, Outage
from taskflow.worker import decisions
from taskflow.worker.claim import Claimer
from taskflow.worker.inflight import InFlight
from taskflow.worker.recorder import Recorder
from taskflow.worker.scripts import ReclaimedEntry, WorkerScripts

log = structlog.get_logger()
# Checking for stale entries is cheap (XPENDING IDLE); doing it often lets entries the
# coordinator hands off from a dead worker move on within a second.
RECLAIM_EVERY_S = 1.0


async def reclaim_forever(
    scripts: WorkerScripts,
    consumer: str,
    streams: list[str],
    inflight: InFlight,
    lease_ms: int,
    interval_s: float,
    take: Callable[[str, ReclaimedEntry], Awaitable[None]],
    starts_hash_of: Callable[[str], str],
    outage: Outage,
) -> None:
    """Every ``interval_s``, XAUTOCLAIM entries idle for longer than the lease and hand each
    to ``take``. A busy worker reclaims too (the entries join its backlog like read ones):
    otherwise a dead worker's entries would wait until every queue ran dry."""
    while True:
        await asyncio.sleep(interval_s)
        for stream in streams:
            count = inflight.reclaim_room()
            if count == 0:
                break
            try:
                claimed = await scripts.reclaim(
                    dispatch_stream=stream,
                    starts_hash=starts_hash_of(stream),
                    consumer=consumer,
                    min_idle_ms=lease_ms,
                    count=count,
                )
            except REDIS_AWAY as e:
                outage.failed(e, during="reclaim")
                continue
            except RedisError as e:
                log.warning("reclaim_failed", stream=stream, error=str(e))
                continue
            outage.succeeded()
            for entry in claimed:
                # Our own entry can only look idle if this loop was starved; it is still
                # running here, and XAUTOCLAIM just renewed it.
                if not inflight.holds(entry.entry_id):
                    await take(stream, entry)


class Reclaimer:
    """Admits what ``reclaim_forever`` took over, as the worker's own from then on."""

    def __init__(
        self,
        *,
        claimer: Claimer,
        recorder: Recorder,
        inflight: InFlight,
        consumer: str,
        max_deliveries: int,
        partition_of: Callable[[str], int],
        start_from_backlog: Callable[[], None],
    ) -> None:
        self._claimer = claimer
        self._recorder = recorder
        self._inflight = inflight
        self._consumer = consumer
        self._max_deliveries = max_deliveries
        self._partition_of = partition_of
        self._start_from_backlog = start_from_backlog

    async def take(self, stream: str, claimed: ReclaimedEntry) -> None:
        # Held (its lease renewed) but not startable until its TaskReclaimed is recorded;
        # a suspect is marked at once, so nothing else starts beside it meanwhile.
        entry = self._claimer.admit(
            stream,
            self._partition_of(stream),
            claimed.entry_id,
            claimed.fields,
            claimed.delivery_count,
            claimed.runs_begun,
            startable=False,
        )
        if entry is None:
            return
        inflight = self._inflight
        decision = decisions.decide_reclaimed(claimed.runs_begun, self._max_deliveries)
        if isinstance(decision, decisions.DeadLetter):
            now = datetime.now(UTC)
            dead = decisions.dead_lettered(entry, self._consumer, decision.reason, claimed.previous_owner, now)
            inflight.settling.add(entry.entry_id)
            await self._recorder.record(entry, dead, "finish")
            inflight.remove(entry.entry_id)
            log.warning("task_dead_lettered", task_id=entry.task.aggregate_id, reason=decision.reason)
            return
        if decisions.is_suspect(claimed.runs_begun):
            inflight.suspects.add(entry.entry_id)
        now = datetime.now(UTC)
        event = decisions.reclaimed(entry, self._consumer, claimed.previous_owner, claimed.idle_ms, now)
        if await self._recorder.record(entry, event, "note") is None:
            inflight.remove(entry.entry_id)
            return
        if not inflight.holds(entry.entry_id):
            return  # its lease was lost meanwhile
        inflight.backlog.add(entry)
        log.info("task_reclaimed", task_id=entry.task.aggregate_id, from_worker=claimed.previous_owner)
        self._start_from_backlog()
