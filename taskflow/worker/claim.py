"""Claiming new work: one XREADGROUP loop per partition, and admitting what it reads into
the in-flight set. An entry that cannot be read is rejected whole, never retried."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from redis.typing import KeyT, StreamIdT

from taskflow.events import DispatchRejected, Priority, encode, tag_of
from taskflow.outage import REDIS_AWAY, Outage
from taskflow.streams.keyspace import WORKERS_GROUP, Keyspace
from taskflow.worker import decisions
from taskflow.worker.entry import DispatchEntry, parse_entry
from taskflow.worker.errors import MalformedDispatchEntry
from taskflow.worker.inflight import InFlight
from taskflow.worker.scripts import WorkerScripts

log = structlog.get_logger()
READ_BLOCK_MS = 1000
# With a backlog held but nothing new on the streams, look again after a start or this.
NOTHING_NEW_WAIT_S = 0.1


class Claimer:
    def __init__(
        self,
        *,
        redis: Redis,
        keyspace: Keyspace,
        scripts: WorkerScripts,
        consumer: str,
        queues: tuple[Priority, ...],
        inflight: InFlight,
        outage: Outage,
        stopping: asyncio.Event,
        start_from_backlog: Callable[[], None],
    ) -> None:
        self._redis = redis
        self._keyspace = keyspace
        self._scripts = scripts
        self._consumer = consumer
        self._queues = queues
        self._inflight = inflight
        self._outage = outage
        self._stopping = stopping
        self._start_from_backlog = start_from_backlog
        self._rejecting: set[asyncio.Task[None]] = set()

    async def read_partition(self, partition: int) -> None:
        """Read new entries of ``partition`` until the worker stops."""
        inflight = self._inflight
        levels = {self._keyspace.dispatch(partition, q): q for q in self._queues}
        while not self._stopping.is_set():
            # Keep up to `capacity` entries of every level waiting here, so the weighted
            # picker always sees each level that has work (else a drained backlog would
            # hand out starts in equal turns).
            wanted = inflight.wanted_per_level(self._queues)
            if not wanted:
                await inflight.wait_for_free_slot(READ_BLOCK_MS / 1000)
                continue
            streams: dict[KeyT, StreamIdT] = {s: ">" for s, q in levels.items() if q in wanted}
            # Block only with nothing waiting here; else a read of empty streams would
            # stall while the backlog still has work for freed slots.
            block = None if inflight.backlog else READ_BLOCK_MS
            try:
                answer = await self._redis.xreadgroup(
                    WORKERS_GROUP, self._consumer, streams, count=min(wanted.values()), block=block
                )
            except REDIS_AWAY as e:
                self._outage.failed(e, during="read")
                await asyncio.sleep(1)
                continue
            except RedisError as e:
                log.warning("read_failed", error=str(e))
                await asyncio.sleep(1)
                continue
            self._outage.succeeded()
            for stream, entries in answer or []:
                for entry_id, fields in entries:
                    self.admit(stream, partition, entry_id, fields, delivery_count=1, runs_begun=0)
            self._start_from_backlog()
            if not answer and block is None:
                await inflight.wait_for_change(NOTHING_NEW_WAIT_S)

    def admit(
        self,
        stream: str,
        partition: int,
        entry_id: str,
        fields: dict[str, str],
        delivery_count: int,
        runs_begun: int,
        *,
        startable: bool = True,
    ) -> DispatchEntry | None:
        """Hold a read or reclaimed entry (its lease renewed from now on); ``startable``
        puts it in the backlog at once. None for an entry that cannot be read."""
        try:
            entry = parse_entry(
                stream=stream,
                entry_id=entry_id,
                partition=partition,
                delivery_count=delivery_count,
                runs_begun=runs_begun,
                fields=fields,
            )
        except MalformedDispatchEntry as e:
            log.error("malformed_dispatch_entry", stream=stream, entry_id=entry_id, error=str(e))
            rejection = decisions.rejected(
                stream=stream,
                entry_id=entry_id,
                partition=partition,
                keyspace=self._keyspace,
                fields=fields,
                error=str(e),
                worker_id=self._consumer,
                now=datetime.now(UTC),
            )
            reject = asyncio.create_task(self._reject(rejection))
            self._rejecting.add(reject)
            reject.add_done_callback(self._rejecting.discard)
            return None
        self._inflight.add(entry)
        if startable:
            self._inflight.backlog.add(entry)
        return entry

    async def _reject(self, rejection: DispatchRejected) -> None:
        """Take the entry off its stream and record it whole, in one step (owned_append):
        it can never decode, so retrying it would only loop, and dropping it would lose
        it. Redis away: the entry stays pending, is reclaimed later and rejected again."""
        try:
            await self._scripts.owned_append(
                partition=rejection.partition,
                dispatch_stream=rejection.stream,
                consumer=self._consumer,
                entry_id=rejection.entry_id,
                event_type=tag_of(rejection),
                payload=encode(rejection),
                kind="finish",
                task_id=rejection.task_id or "",
                final_state="failed" if rejection.task_id else "",
            )
        except (RedisError, OSError) as e:
            log.warning("dispatch_rejection_failed", entry_id=rejection.entry_id, error=str(e))
