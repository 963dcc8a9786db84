"""Campaigns whose ``scheduled_at`` came: the coordinator leading their partition starts
them, as their owner's start would (one send task per pending recipient)."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import cast

import asyncpg
import structlog
from redis.asyncio import Redis

from taskflow.campaigns.audience import Audience
from taskflow.campaigns.control import CampaignConflict, CampaignControl, CampaignUnknown
from taskflow.campaigns.ledger import CampaignLedger
from taskflow.events import Envelope, RecipientFailed
from taskflow.outage import POSTGRES_AWAY
from taskflow.settings import Settings
from taskflow.streams.keyspace import Keyspace

log = structlog.get_logger()
BATCH = 20
# A running campaign whose counters stood still this long is checked for stuck recipients.
STALL_S = 10.0
# Tasks found without a marker are remembered this long (then judged afresh).
FORGET_MISSING_S = 3600.0


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


class StalledSends:
    """Recipients a send task left behind: assigned to it (``pending:<task>``) or being sent
    by it (``sending:<task>``) when the task ended without recording them: a timeout, a
    poison entry dead-lettered, a cancel, an error outside SMTP on its last try. Without
    this the campaign would wait for them forever. A campaign is looked at only once it
    made no progress for ``STALL_S``; such recipients are recorded FAILED with the task's
    end (``resend-failed`` can try them again)."""

    def __init__(self, redis: Redis, keyspace: Keyspace) -> None:
        self.redis = redis
        self.keyspace = keyspace
        self.ledger = CampaignLedger(redis, keyspace)
        # campaign id -> (its progress counters, since when they stood still)
        self._seen: dict[str, tuple[tuple[str, ...], float]] = {}
        # task id -> when its marker was first found missing: a task just assigned has no
        # marker until its submit lands, so "gone" needs to last a whole stall period.
        self._missing_since: dict[str, float] = {}

    async def sweep(self, partition: int, leader: str) -> int:
        """Record the stuck recipients of the partition's stalled campaigns; how many."""
        ks = self.keyspace
        running = await cast("Awaitable[set[str]]", self.redis.smembers(ks.campaigns_running(partition)))
        failed = 0
        for campaign_id in running:
            state = await cast(
                "Awaitable[list[str | None]]",
                self.redis.hmget(ks.campaign(campaign_id), ["status", "pending", "sent", "failed", "skipped"]),
            )
            if state[0] in (None, "completed"):
                await self.redis.srem(ks.campaigns_running(partition), campaign_id)  # type: ignore[misc]
                self._seen.pop(campaign_id, None)
                continue
            progress = tuple(v or "" for v in state[1:])
            now = time.monotonic()
            seen = self._seen.get(campaign_id)
            if seen is None or seen[0] != progress:
                self._seen[campaign_id] = (progress, now)
                continue
            if now - seen[1] < STALL_S:
                continue
            failed += await self._fail_orphans(campaign_id, leader)
            self._seen[campaign_id] = (progress, now)
        return failed

    async def _fail_orphans(self, campaign_id: str, leader: str) -> int:
        ledger = await cast("Awaitable[dict[str, str]]", self.redis.hgetall(self.keyspace.campaign_ledger(campaign_id)))
        held = {rid: (state, state.partition(":")[2]) for rid, state in ledger.items() if ":" in state}
        if not held:
            return 0
        tasks = sorted({task_id for _, task_id in held.values()})
        async with self.redis.pipeline(transaction=False) as pipe:
            for task_id in tasks:
                pipe.hget(self.keyspace.task_marker(task_id), "state")
            states = dict(zip(tasks, await pipe.execute(), strict=True))
        now = time.monotonic()
        for task_id, since in list(self._missing_since.items()):
            if now - since > FORGET_MISSING_S:
                del self._missing_since[task_id]
        for task_id, task_state in states.items():
            if task_state is None:
                self._missing_since.setdefault(task_id, now)
            else:
                self._missing_since.pop(task_id, None)
        failed = 0
        for recipient, (seen, task_id) in held.items():
            ended = orphaned_by(states[task_id])
            if ended is None or (ended == "gone" and now - self._missing_since[task_id] < STALL_S):
                continue
            event = RecipientFailed(
                aggregate_id=campaign_id,
                occurred_at=datetime.now(UTC),
                correlation_id=campaign_id,
                actor=f"coordinator:{leader}",
                recipient_id=recipient,
                task_id=task_id,
                error=f"its send task {task_id} ended ({ended}) without recording it",
            )
            # Only if it is still held as seen: a resume may have given it to a new task.
            recorded = await self.ledger.record(campaign_id, recipient, "failed", event, if_state=seen)
            if recorded.outcome == "recorded":
                failed += 1
                log.warning(
                    "campaign_recipient_orphaned", campaign_id=campaign_id, recipient_id=recipient, task_state=ended
                )
        return failed


def orphaned_by(task_state: str | None) -> str | None:
    """Why a recipient held by a task with this marker state can no longer be recorded by
    it (None: the task may still record it). A task that ended or is gone records nothing."""
    if task_state is None:
        return "gone"
    if task_state in ("failed", "timed_out", "cancelled", "succeeded"):
        return task_state
    return None
