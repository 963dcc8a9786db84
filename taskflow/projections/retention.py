"""Retention of what the projections keep: dead letters older than
``settings.dlq_retention_days`` are purged, hourly, for as long as the projector runs."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import structlog

from taskflow.outage import POSTGRES_AWAY
from taskflow.projections import store
from taskflow.settings import Settings

log = structlog.get_logger()
PURGE_EVERY_S = 3600.0


async def purge_dead_letters_forever(settings: Settings, pool: asyncpg.Pool) -> None:
    retention = timedelta(days=settings.dlq_retention_days)
    while True:
        try:
            purged = await store.purge_dead_letters(pool, retention)
        except (asyncpg.PostgresError, *POSTGRES_AWAY) as e:
            log.warning("dlq_purge_failed", error=str(e))
        else:
            if purged:
                log.info("dlq_purged", rows=purged, retention_days=settings.dlq_retention_days)
        await asyncio.sleep(PURGE_EVERY_S)
