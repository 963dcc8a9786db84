"""Campaigns whose ``scheduled_at`` came: the coordinator leading their partition starts
them, as their owner's start would (one send task per pending recipient)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import asyncpg
import structlog
from redis.asyncio import Redis

from taskflow.campaigns.audience import Audience
from taskflow.campaigns.control import CampaignConflict, CampaignControl, CampaignUnknown
from taskflow.events import Envelope
from taskflow.outage import POSTGRES_AWAY
from taskflow.settings import Settings
from taskflow.streams.keyspace import Keyspace

log = structlog.get_logger()
BATCH = 20


class DueCampaigns:
    def __init__(self, settings: Settings, redis: Redis, pool: asyncpg.Pool, keyspace: Keyspace) -> None:
        self.settings = settings
        self.redis = redis
        self.keyspace = keyspace
        self.control = CampaignControl(redis, keyspace)
        self.audience = Audience(redis, pool, keyspace)

    async def start_due(self, partition: int, leader: str) -> int:
        """Start the partition's campaigns that are due; how many started. A start that
        fails (PostgreSQL away) stays due and is tried again on the next sweep."""
        due = await self.redis.zrangebyscore(
            self.keyspace.campaigns_due(partition), "-inf", int(time.time() * 1000), start=0, num=BATCH
        )
        started = 0
        for campaign_id in due:
            envelope: Envelope = {
                "aggregate_id": campaign_id,
                "occurred_at": datetime.now(UTC),
                "correlation_id": campaign_id,
                "causation_id": None,
                "traceparent": None,
                "actor": f"coordinator:{leader}",
                "request_id": None,
            }
            try:
                outcome = await self.control.run(
                    "start",
                    campaign_id,
                    envelope,
                    audience=self.audience,
                    audit=False,  # no person acted: its time came
                    marker_ttl_seconds=self.settings.idempotency_ttl_seconds,
                )
            except (CampaignConflict, CampaignUnknown) as e:
                # Started by its owner first, or gone: nothing is due any more.
                log.info("scheduled_campaign_not_started", campaign_id=campaign_id, reason=str(e))
            except (asyncpg.PostgresError, *POSTGRES_AWAY) as e:
                log.warning("scheduled_campaign_start_failed", campaign_id=campaign_id, error=repr(e))
                continue
            else:
                started += 1
                log.info("scheduled_campaign_started", campaign_id=campaign_id, send_tasks=outcome.send_tasks)
            await self.redis.zrem(self.keyspace.campaigns_due(partition), campaign_id)
        return started
