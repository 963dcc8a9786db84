"""Orders from outside while the worker runs (pause / resume, cancels of running tasks),
and handing entries not yet started back to live workers (on pause and on shutdown)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from taskflow.outage import REDIS_AWAY, Outage
from taskflow.streams.keyspace import WORKERS_GROUP, Keyspace
from taskflow.worker import orders
from taskflow.worker.entry import DispatchEntry
from taskflow.worker.inflight import InFlight

log = structlog.get_logger()
# A running task is stopped within this (plus the kill) of its cancel request.
CANCEL_POLL_S = 0.5


class Control:
    def __init__(
        self,
        *,
        redis: Redis,
        keyspace: Keyspace,
        consumer: str,
        inflight: InFlight,
        outage: Outage,
        lease_ms: int,
        start_from_backlog: Callable[[], None],
    ) -> None:
        self._redis = redis
        self._keyspace = keyspace
        self._consumer = consumer
        self._inflight = inflight
        self._outage = outage
        self._lease_ms = lease_ms
        self._start_from_backlog = start_from_backlog
        # Entries whose task a user asked to cancel: their cancellation is the user's, to
        # be recorded, not a lost lease's.
        self.cancel_requested: set[str] = set()

    async def follow_orders_forever(self) -> None:
        """Poll for pause / resume and for cancels of running tasks."""
        inflight = self._inflight
        while True:
            await asyncio.sleep(CANCEL_POLL_S)
            try:
                await self.apply_pause(await orders.pause_ordered(self._redis, self._keyspace, self._consumer))
                running = [e for e in inflight.entries() if inflight.runs_code(e.entry_id)]
                cancelled = await orders.cancel_requested(self._redis, self._keyspace, running)
            except REDIS_AWAY as e:
                self._outage.failed(e, during="order_poll")
                continue
            except RedisError as e:
                log.warning("order_poll_failed", error=str(e))
                continue
            self._outage.succeeded()
            for entry in cancelled:
                task = inflight.running.get(entry.entry_id)
                if (
                    task is not None
                    and inflight.runs_code(entry.entry_id)
                    and entry.entry_id not in self.cancel_requested
                ):
                    self.cancel_requested.add(entry.entry_id)
                    task.cancel()

    async def apply_pause(self, paused: bool) -> None:
        inflight = self._inflight
        if paused != inflight.paused:
            inflight.paused = paused
            log.info("worker_paused" if paused else "worker_resumed")
        if paused and inflight.backlog:
            # Held but not started counts as new work: let live workers have it now.
            await self.hand_back(list(inflight.backlog))
        elif not paused:
            self._start_from_backlog()

    async def hand_back(self, entries: list[DispatchEntry]) -> None:
        # Marking them idle for a whole lease lets any live worker's XAUTOCLAIM take them
        # now instead of after a lease; JUSTID leaves the delivery count alone. Each leaves
        # the backlog only once handed back: if Redis fails midway, the rest stay held.
        inflight = self._inflight
        for entry in entries:
            inflight.backlog.remove(entry)  # not to be started while we wait
            try:
                await self._redis.xclaim(
                    entry.stream, WORKERS_GROUP, self._consumer, 0, [entry.entry_id], idle=self._lease_ms, justid=True
                )
            except BaseException:
                inflight.backlog.add(entry)  # still ours: to start, or hand back later
                raise
            inflight.remove(entry.entry_id)
