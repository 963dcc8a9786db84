"""Keeping our leases and taking over the leases of dead workers (invariant 5)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from redis.exceptions import RedisError

from taskflow.outage import REDIS_AWAY, Outage
from taskflow.worker.inflight import InFlight
from taskflow.worker.scripts import ReclaimedEntry, WorkerScripts

log = structlog.get_logger()


async def renew_leases_forever(
    scripts: WorkerScripts,
    consumer: str,
    inflight: InFlight,
    interval_s: float,
    on_lost: Callable[[str], None],
    outage: Outage,
) -> None:
    """Every ``interval_s`` (a third of the lease), reset the idle time of every entry we
    hold, so only entries of silent workers ever reach ``min-idle = lease``."""
    while True:
        await asyncio.sleep(interval_s)
        for stream, entry_ids in inflight.by_stream().items():
            try:
                kept = await scripts.renew_lease(dispatch_stream=stream, consumer=consumer, entry_ids=entry_ids)
            except REDIS_AWAY as e:
                outage.failed(e, during="lease_renewal")
                continue
            except RedisError as e:
                log.warning("lease_renewal_failed", stream=stream, error=str(e))
                continue
            outage.succeeded()
            for entry_id in set(entry_ids) - kept:
                on_lost(entry_id)


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
