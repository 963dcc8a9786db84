"""The coordinator: leads partitions and promotes due tasks from the schedule, releases
waiting tasks, fires cron ticks, buries silent workers, and trims the streams of the
partitions it leads (``trimmer``)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import cast

import asyncpg
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from taskflow import cron
from taskflow.coordinator.campaigns import DueCampaigns, StalledSends
from taskflow.coordinator.decisions import (
    child_cancelled_event,
    decide_waiting,
    died_event,
    queued_event,
    tick_event,
)
from taskflow.coordinator.scripts import CoordinatorScripts
from taskflow.coordinator.trimmer import Trimmer
from taskflow.events import EventDecodeError, TaskSubmitted, decode
from taskflow.outage import REDIS_AWAY, Outage
from taskflow.settings import Settings
from taskflow.streams.cancel import Canceller
from taskflow.streams.dispatch import HeldDispatch, decode_held
from taskflow.streams.groups import ensure_groups
from taskflow.streams.keyspace import WORKERS_GROUP, Keyspace
from taskflow.streams.schedules import ScheduleDefinition, decode_schedule
from taskflow.streams.submit import Submitter

log = structlog.get_logger()
# The seed polls every 5 s; a due task must start within 1 s of its time.
TICK_S = 0.1
PROMOTE_BATCH = 500
SWEEP_EVERY_S = 0.5


class Coordinator:
    def __init__(self, settings: Settings, redis: Redis, pool: asyncpg.Pool) -> None:
        self.settings = settings
        self.redis = redis
        self.keyspace = Keyspace.of(settings)
        self.scripts = CoordinatorScripts(redis, self.keyspace)
        self.submitter = Submitter(redis, self.keyspace)
        self.canceller = Canceller(redis, self.keyspace)
        self.id = uuid.uuid4().hex
        self.promoted = 0
        self.ticks_fired = 0
        # partition -> our "id|fence" while we lead it
        self.leading: dict[int, str] = {}
        self.redis_outage = Outage("redis")
        # Reads the archive's checkpoints from PostgreSQL (``pool``); nothing else here does.
        self.trimmer = Trimmer(settings, redis, pool, self.scripts, self.redis_outage)
        self.campaigns = DueCampaigns(settings, redis, pool, self.keyspace)
        self.stalled_sends = StalledSends(redis, self.keyspace)
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        await ensure_groups(self.redis, self.keyspace)
        log.info("coordinator_started", coordinator_id=self.id)
        # Its own task: a slow PostgreSQL read or a long trim never delays a due task.
        trimming = asyncio.create_task(self.trimmer.trim_forever(lambda: list(self.leading), self._stopping))
        try:
            await self._lead_and_promote()
        finally:
            trimming.cancel()  # a pass cut short removed only what it was sure of
            with contextlib.suppress(asyncio.CancelledError):
                await trimming
        log.info("coordinator_stopped", coordinator_id=self.id, promoted=self.promoted)

    async def _lead_and_promote(self) -> None:
        renew_s = self.settings.lease_seconds / 3
        next_renewal = 0.0
        next_sweep = 0.0
        while not self._stopping.is_set():
            try:
                if time.monotonic() >= next_renewal:
                    await self._elect()
                    next_renewal = time.monotonic() + renew_s
                for partition, leader in list(self.leading.items()):
                    await self._promote_due(partition, leader)
                    await self._fire_due_schedules(partition, leader)
                if time.monotonic() >= next_sweep:
                    # Sweeps read every waiting task / every worker: not every tick.
                    for partition, leader in list(self.leading.items()):
                        await self._release_waiting(partition, leader)
                        await self._bury_silent_workers(partition, leader)
                        await self.campaigns.start_due(partition, leader)
                        await self.stalled_sends.sweep(partition, leader)
                    next_sweep = time.monotonic() + SWEEP_EVERY_S
            except REDIS_AWAY as e:
                self.redis_outage.failed(e)
            except RedisError as e:
                log.warning("coordinator_redis_error", error=str(e))
            else:
                self.redis_outage.succeeded()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), TICK_S)

    async def _elect(self) -> None:
        for p in self.keyspace.all_partitions:
            value = await self.scripts.lead(partition=p, candidate=self.id, lease_ms=self.settings.lease_ms)
            if value is None and p in self.leading:
                log.warning("coordinator_leadership_lost", partition=p)
                del self.leading[p]
            elif value is not None and self.leading.get(p) != value:
                log.info("coordinator_leading", partition=p, leader=value)
                self.leading[p] = value

    async def _release_waiting(self, partition: int, leader: str) -> None:
        """Dispatch waiting tasks whose parents all completed; cancel those whose parent
        failed for good or was cancelled. Parent states come from their task markers."""
        ks = self.keyspace
        waiting = await self.redis.zrange(ks.waiting(partition), 0, PROMOTE_BATCH - 1)
        if not waiting:
            return
        raw = await cast("Awaitable[list[str | None]]", self.redis.hmget(ks.held(partition), waiting))
        children = [
            (held, _submitted(held)) for held in (_parse(t, v) for t, v in zip(waiting, raw, strict=True)) if held
        ]
        parents = sorted({p for _, child in children for p in child.depends_on})
        async with self.redis.pipeline(transaction=False) as pipe:
            for parent in parents:
                pipe.hget(ks.task_marker(parent), "state")
            states = dict(zip(parents, await pipe.execute(), strict=True))
        now = datetime.now(UTC)
        for held, child in children:
            decision = decide_waiting({p: states[p] for p in child.depends_on})
            if decision == "release":
                await self.scripts.promote(
                    partition=partition,
                    leader=leader,
                    held=held,
                    queued=queued_event(held, child, leader, now, parents_done=True),
                    from_waiting=True,
                )
            elif decision != "wait":
                await self.canceller.cancel(held.task_id, child_cancelled_event(child, decision, leader, now), None)
                log.info("waiting_task_cancelled", task_id=held.task_id, reason=decision)

    async def _fire_due_schedules(self, partition: int, leader: str) -> None:
        ks = self.keyspace
        now = datetime.now(UTC)
        due = await self.redis.zrangebyscore(
            ks.cron_due(partition), "-inf", int(now.timestamp() * 1000), withscores=True
        )
        for schedule_id, score in due:
            raw = await cast("Awaitable[str | None]", self.redis.hget(ks.cron_schedules(partition), schedule_id))
            if raw is None:
                continue  # deleted meanwhile
            definition = decode_schedule(raw)
            ticks, next_at = cron.due_ticks(definition.cron, datetime.fromtimestamp(score / 1000, UTC), now)
            # Submit first, then advance: a crash in between re-fires the same ticks, which
            # dedupe on their derived task ids; the other order could lose a tick.
            for tick in ticks:
                await self._submit_tick(definition, tick, now)
            await self.scripts.schedule_advance(
                partition=partition,
                leader=leader,
                schedule_id=schedule_id,
                tick_ms=int(score),
                next_ms=int(next_at.timestamp() * 1000),
            )

    async def _submit_tick(self, definition: ScheduleDefinition, tick: datetime, now: datetime) -> None:
        event = tick_event(definition, tick, now)
        outcome = await self.submitter.submit(
            event,
            fingerprint=f"cron:{definition.schedule_id}",
            marker_ttl_seconds=self.settings.idempotency_ttl_seconds,
        )
        if outcome.created:
            self.ticks_fired += 1
            log.info("schedule_tick_fired", schedule_id=definition.schedule_id, tick=tick.isoformat())

    async def _bury_silent_workers(self, partition: int, leader: str) -> None:
        silent_since_ms = int((time.time() - self.settings.worker_dead_after_seconds) * 1000)
        silent = await self.redis.zrangebyscore(
            self.keyspace.worker_registry(partition), "-inf", silent_since_ms, withscores=True
        )
        for worker_id, last_ms in silent:
            event = died_event(worker_id, last_ms, leader, datetime.now(UTC))
            buried = await self.scripts.bury(
                partition=partition,
                leader=leader,
                worker_id=worker_id,
                silent_since_ms=silent_since_ms,
                died=event,
            )
            if buried:
                handed = await _hand_off(self.redis, self.keyspace, self.settings.lease_ms, worker_id)
                log.warning("worker_died", worker_id=worker_id, silent_s=event.silent_s, entries_handed_off=handed)

    async def _promote_due(self, partition: int, leader: str) -> None:
        ks = self.keyspace
        now_ms = int(time.time() * 1000)
        due = await self.redis.zrangebyscore(ks.held_due(partition), "-inf", now_ms, start=0, num=PROMOTE_BATCH)
        if not due:
            return
        raw = await cast("Awaitable[list[str | None]]", self.redis.hmget(ks.held(partition), due))
        now = datetime.now(UTC)
        async with self.redis.pipeline(transaction=False) as pipe:
            queued = 0
            for task_id, value in zip(due, raw, strict=True):
                held = _parse(task_id, value)
                if held is None:
                    continue
                submitted = decode(held.event_id, held.event.encode())
                assert isinstance(submitted, TaskSubmitted)
                event = queued_event(held, submitted, leader, now)
                await self.scripts.promote(partition=partition, leader=leader, held=held, queued=event, pipeline=pipe)
                queued += 1
            answers = await pipe.execute() if queued else []
        self.promoted += sum(1 for a in answers if a)
        if answers and not all(answers):
            log.info("promote_refused", partition=partition, refused=sum(1 for a in answers if not a))


async def _hand_off(redis: Redis, keyspace: Keyspace, lease_ms: int, dead_worker: str) -> int:
    """Make a dead worker's entries look idle for a whole lease, so live workers' XAUTOCLAIM
    takes them on its next pass instead of after the lease (JUSTID: not a delivery)."""
    handed = 0
    for p in keyspace.all_partitions:
        for stream in keyspace.dispatch_streams(p):
            pending = await redis.xpending_range(stream, WORKERS_GROUP, "-", "+", 10_000, consumername=dead_worker)
            ids = [entry["message_id"] for entry in pending]
            if ids:
                await redis.xclaim(stream, WORKERS_GROUP, dead_worker, 0, ids, idle=lease_ms, justid=True)
                handed += len(ids)
    return handed


def _submitted(held: HeldDispatch) -> TaskSubmitted:
    event = decode(held.event_id, held.event.encode())
    assert isinstance(event, TaskSubmitted)  # held entries are written from TaskSubmitted only
    return event


def _parse(task_id: str, value: str | None) -> HeldDispatch | None:
    if value is None:
        return None  # promoted by someone else between our two reads
    try:
        return decode_held(value)
    except (ValueError, EventDecodeError) as e:
        log.error("held_dispatch_undecodable", task_id=task_id, error=str(e))
        return None
