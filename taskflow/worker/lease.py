"""Keeping our leases (invariant 5): renewed every third of a lease while we hold them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog
from redis.exceptions import RedisError

from taskflow.outage import REDIS_AWAY, Outage
from taskflow.worker.inflight import InFlight
from taskflow.worker.scripts import WorkerScripts

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
        await renew_once(scripts, consumer, inflight, on_lost, outage)


async def renew_once(
    scripts: WorkerScripts, consumer: str, inflight: InFlight, on_lost: Callable[[str], None], outage: Outage
) -> None:
    """Renew every held entry's lease; ``on_lost`` for each one that is no longer ours,
    except those an append of ours may just have acked (``InFlight.settling``)."""
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
            if entry_id not in inflight.settling:
                on_lost(entry_id)
