"""The projector shell: read a batch, fold it, write rows + archive + checkpoint in ONE
transaction, then XACK (ARCHITECTURE invariant 4).

A crash after COMMIT and before XACK redelivers the batch; every event at or below the
checkpoint is then skipped, so the archive never holds a row twice and the projections
converge. Each partition is projected by at most one process at a time (a Redis lock) and,
as a second fence, the checkpoint row is locked for the transaction (invariant 6).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from datetime import timedelta

import asyncpg
import msgspec
import structlog
from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, RedisError

from taskflow import keys
from taskflow.events import AnyEvent, EventDecodeError, decode, tag_of
from taskflow.projections import store
from taskflow.projections.batch import fold_batch, task_ids, worker_ids
from taskflow.scripts import LockLost, Scripts
from taskflow.settings import Settings
from taskflow.streams import ensure_groups

log = structlog.get_logger()
BATCH_SIZE = 1000
PURGE_EVERY_S = 3600.0
READ_BLOCK_MS = 1000


class _StoredVersion(msgspec.Struct):
    schema_version: int = 1


_version_decoder = msgspec.json.Decoder(_StoredVersion)


class Batch(msgspec.Struct):
    """Entries read from one partition's stream: their ids (all to be acked) and events."""

    entry_ids: list[str]
    events: list[AnyEvent]
    records: list[store.ArchiveRecord]


def parse_batch(partition: int, entries: list[tuple[str, dict[str, str]]]) -> Batch:
    batch = Batch([], [], [])
    for entry_id, fields in entries:
        batch.entry_ids.append(entry_id)
        payload = fields.get("data", "")
        try:
            event = decode(entry_id, payload.encode())
        except EventDecodeError as e:
            # Acked and logged, never retried: a payload that cannot decode never will.
            log.error("event_undecodable", event_id=entry_id, partition=partition, error=str(e))
            continue
        batch.events.append(event)
        batch.records.append(_archive_record(partition, event, payload))
    return batch


def _archive_record(partition: int, event: AnyEvent, payload: str) -> store.ArchiveRecord:
    ms, seq = store.parse_stream_id(event.event_id)
    return store.ArchiveRecord(
        partition=partition,
        event_id=event.event_id,
        id_ms=ms,
        id_seq=seq,
        event_type=tag_of(event),
        # The archive keeps the payload as written; upcasting happens on every read.
        schema_version=_version_decoder.decode(payload).schema_version,
        aggregate_id=event.aggregate_id,
        occurred_at=event.occurred_at,
        correlation_id=event.correlation_id,
        causation_id=event.causation_id,
        traceparent=event.traceparent,
        actor=event.actor,
        payload=payload,
    )


async def apply_batch(pool: asyncpg.Pool, partition: int, batch: Batch, fence: int) -> int:
    """Commit the events above the checkpoint; returns how many were applied.

    Raises ``store.FencedOut`` (and writes nothing) if a projector with a newer fencing
    token has committed meanwhile.
    """
    async with pool.acquire() as conn, conn.transaction():
        checkpoint = await store.lock_checkpoint(conn, partition, fence)
        fresh = [i for i, e in enumerate(batch.events) if store.parse_stream_id(e.event_id) > checkpoint]
        if not fresh:
            return 0
        events = [batch.events[i] for i in fresh]
        await store.archive(conn, [batch.records[i] for i in fresh])
        stored_tasks = await store.load_tasks(conn, task_ids(events))
        stored_workers = await store.load_workers(conn, worker_ids(events))
        await store.write_changes(conn, fold_batch(events, stored_tasks, stored_workers))
        await store.advance_checkpoint(conn, partition, store.parse_stream_id(events[-1].event_id), fence)
        return len(events)


class Projector:
    def __init__(self, settings: Settings, redis: Redis, pool: asyncpg.Pool) -> None:
        self.settings = settings
        self.redis = redis
        self.pool = pool
        self.applied = 0
        self._stopping = asyncio.Event()
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
        self.scripts = Scripts(redis)

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        await ensure_groups(self.redis, self.settings)
        purge = asyncio.create_task(self._purge_dead_letters_forever())
        try:
            await asyncio.gather(*(self._run_partition(p) for p in range(self.settings.partitions)))
        finally:
            purge.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purge

    async def _purge_dead_letters_forever(self) -> None:
        retention = timedelta(days=self.settings.dlq_retention_days)
        while True:
            try:
                purged = await store.purge_dead_letters(self.pool, retention)
            except (asyncpg.PostgresError, OSError) as e:
                log.warning("dlq_purge_failed", error=str(e))
            else:
                if purged:
                    log.info("dlq_purged", rows=purged, retention_days=self.settings.dlq_retention_days)
            await asyncio.sleep(PURGE_EVERY_S)

    async def _run_partition(self, partition: int) -> None:
        lock = Lock(
            self.redis,
            keys.projector_lock(self.settings.namespace, partition),
            timeout=self.settings.lease_seconds,
            blocking=False,
            thread_local=False,
        )
        while not self._stopping.is_set():
            if await lock.acquire(token=self._owner):
                fence = int(await self.redis.incr(keys.projector_fence(self.settings.namespace, partition)))
                log.info("projector_partition_acquired", partition=partition, fence=fence)
                try:
                    # Raise the fence before reading anything: from now on a predecessor
                    # that wakes up holding a batch cannot commit it.
                    await store.raise_fence(self.pool, partition, fence)
                    await self._project(partition, lock, fence)
                except (store.FencedOut, LockLost) as e:
                    log.warning("projector_partition_lost", partition=partition, error=repr(e))
                finally:
                    await _release(lock)
            else:
                await asyncio.sleep(min(1.0, self.settings.lease_seconds / 3))

    async def _project(self, partition: int, lock: Lock, fence: int) -> None:
        stream = keys.events(self.settings.namespace, partition)
        # The consumer name is the partition's, so a restarted projector first re-reads
        # the entries its predecessor read but never acknowledged.
        consumer = f"projector-{partition}"
        cursor = "0"
        renew_every_s = self.settings.lease_seconds / 3
        renewed_at = asyncio.get_running_loop().time()
        lock_key = keys.projector_lock(self.settings.namespace, partition)
        while not self._stopping.is_set():
            now = asyncio.get_running_loop().time()
            if now - renewed_at >= renew_every_s:
                if not await _still_owned(lock):
                    log.warning("projector_partition_lost", partition=partition)
                    return
                renewed_at = now
            try:
                # The lock check and the read are one step (projector_read.lua).
                entries = await self.scripts.projector_read(
                    lock_key=lock_key,
                    stream=stream,
                    token=self._owner,
                    consumer=consumer,
                    count=BATCH_SIZE,
                    start_id=cursor,
                )
                if not entries:
                    if cursor == "0":
                        cursor = ">"  # our pending entries are done: on to new ones
                    else:
                        await self._wait_for_new_entries(stream)
                    continue
            except (RedisError, OSError) as e:
                log.warning("projector_read_failed", error=str(e))
                await asyncio.sleep(1)
                continue
            await self._apply_and_ack(partition, stream, entries, fence)

    async def _wait_for_new_entries(self, stream: str) -> None:
        """Block until the stream grows, without taking anything from the group (a plain
        XREAD), so the next read goes through the lock check again."""
        newest = await self.redis.xrevrange(stream, count=1)
        after = newest[0][0] if newest else "0-0"
        await self.redis.xread({stream: after}, count=1, block=READ_BLOCK_MS)

    async def _apply_and_ack(
        self, partition: int, stream: str, entries: list[tuple[str, dict[str, str]]], fence: int
    ) -> None:
        batch = parse_batch(partition, entries)
        while True:
            try:
                applied = await apply_batch(self.pool, partition, batch, fence)
                break
            except (asyncpg.PostgresConnectionError, OSError) as e:
                log.warning("projector_write_failed_retrying", error=str(e))
                await asyncio.sleep(1)
        await self.redis.xack(stream, keys.PROJECTOR_GROUP, *batch.entry_ids)
        self.applied += applied
        log.debug("batch_projected", partition=partition, read=len(entries), applied=applied)


async def _still_owned(lock: Lock) -> bool:
    try:
        await lock.reacquire()
    except LockError:
        return False
    return True


async def _release(lock: Lock) -> None:
    # Already expired or taken over: nothing of ours is left to release.
    with contextlib.suppress(LockError):
        await lock.release()
