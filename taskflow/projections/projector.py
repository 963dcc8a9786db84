"""The projector shell: read a batch, fold it, write rows + archive + checkpoint in ONE
transaction, then XACK (ARCHITECTURE invariant 4).

A crash after COMMIT and before XACK redelivers the batch; every event at or below the
checkpoint is then skipped, so the archive never holds a row twice and the projections
converge. Each partition is projected by at most one process at a time (a Redis lock) and,
as a second fence, the checkpoint row is locked for the transaction (invariant 6).

This module is the process: the lock and fencing token per partition, the run loop,
refused batches halved down to the entry to quarantine. The transaction is ``commit``'s,
the reads under the lock ``partition_reader``'s, the dead-letter purge ``retention``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from uuid import UUID

import asyncpg
import structlog
from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, RedisError

from taskflow.outage import POSTGRES_AWAY, REDIS_AWAY, Outage
from taskflow.projections import store
from taskflow.projections.batch import Changes, fold_into, task_ids, worker_ids
from taskflow.projections.cache import RowCache
from taskflow.projections.commit import Folded, apply_batch, commit_folded, folded_of
from taskflow.projections.partition_reader import BATCH_SIZE, RETRY_DELAY_S, PartitionReader
from taskflow.projections.quarantine import describe, refused_by_postgres
from taskflow.projections.reading import FOLD_SLICE, Batch, parse_batch, parse_in_slices
from taskflow.projections.retention import purge_dead_letters_forever
from taskflow.projections.rows import TaskRow, WorkerRow
from taskflow.projections.scripts import LockLost, ProjectorScripts
from taskflow.settings import Settings
from taskflow.streams.groups import ensure_groups
from taskflow.streams.keyspace import PROJECTOR_GROUP, Keyspace

log = structlog.get_logger()
# Rows kept in memory (RowCache). An evicted row must be one PostgreSQL has committed:
# a batch writes at most BATCH_SIZE rows per table and one batch is in flight, so any
# capacity of several batches is safe; this one is about 30 MB of rows.
CACHED_ROWS = 50_000
assert CACHED_ROWS >= 4 * BATCH_SIZE
STUCK_RETRY_MAX_S = 60.0


class Projector:
    def __init__(self, settings: Settings, redis: Redis, pool: asyncpg.Pool) -> None:
        self.settings = settings
        self.redis = redis
        self.pool = pool
        self.applied = 0
        self._stopping = asyncio.Event()
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
        self.keyspace = Keyspace.of(settings)
        self.scripts = ProjectorScripts(redis, self.keyspace)
        # Each outage logged once and its end once, not each retry (taskflow.outage).
        self.redis_outage = Outage("redis")
        self.postgres_outage = Outage("postgres")

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        await ensure_groups(self.redis, self.keyspace)
        purge = asyncio.create_task(purge_dead_letters_forever(self.settings, self.pool))
        try:
            await asyncio.gather(*(self._run_partition(p) for p in self.keyspace.all_partitions))
        finally:
            purge.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purge

    async def _run_partition(self, partition: int) -> None:
        lock = Lock(
            self.redis,
            self.keyspace.projector_lock(partition),
            timeout=self.settings.lease_seconds,
            blocking=False,
            thread_local=False,
        )
        stuck_s = RETRY_DELAY_S
        while not self._stopping.is_set():
            try:
                await self._hold(partition, lock)
            except (*POSTGRES_AWAY, RedisError) as e:
                # Redis or PostgreSQL away (restart, failover, network): drop the partition
                # and take it again; what was not committed is read again and what was is
                # skipped (checkpoint), so nothing is lost or applied twice. Connections
                # PostgreSQL may have cut are replaced, not reused.
                # (An OSError is PostgreSQL's: redis-py wraps its own in ConnectionError.)
                if not isinstance(e, RedisError):
                    self.postgres_outage.failed(e, partition=partition)
                elif isinstance(e, REDIS_AWAY):
                    self.redis_outage.failed(e, partition=partition)
                else:
                    log.warning("projector_partition_interrupted", partition=partition, error=repr(e))
                await self.pool.expire_connections()
                await asyncio.sleep(RETRY_DELAY_S)
                stuck_s = RETRY_DELAY_S
            except Exception as e:  # the partition loop's one catch-all (HOUSE_STYLE §6)
                # What no one event explains: a constraint our folds broke, a missing table,
                # a stream id no checkpoint column can hold. Never skip it and never die on
                # it (a restart would meet it again): the partition stops here, loudly, and
                # is tried again with a growing pause until someone fixes the cause.
                log.error("projector_partition_stuck", partition=partition, retry_in_s=stuck_s, exc_info=e)
                await asyncio.sleep(stuck_s)
                stuck_s = min(stuck_s * 2, STUCK_RETRY_MAX_S)

    async def _hold(self, partition: int, lock: Lock) -> None:
        """Project the partition while its lock is ours; a short wait when another has it."""
        acquired = await lock.acquire(token=self._owner)
        self.redis_outage.succeeded()
        if not acquired:
            await asyncio.sleep(min(1.0, self.settings.lease_seconds / 3))
            return
        try:
            fence = int(await self.redis.incr(self.keyspace.projector_fence(partition)))
            log.info("projector_partition_acquired", partition=partition, fence=fence)
            # Raise the fence before reading anything: from now on a predecessor that
            # wakes up holding a batch cannot commit it.
            await store.raise_fence(self.pool, partition, fence)
            self.postgres_outage.succeeded()
            while not self._stopping.is_set():
                try:
                    await self._project(partition, lock, fence)
                    return
                except Exception as e:
                    if not refused_by_postgres(e):
                        raise
                    # Some event of the batch holds what PostgreSQL will not take: find it
                    # among the entries read and not yet acked, quarantine it, go on.
                    log.warning("projector_batch_refused", partition=partition, error=repr(e))
                    if not await self._isolate_refused(partition, lock, fence):
                        return
        except (store.FencedOut, LockLost) as e:
            log.warning("projector_partition_lost", partition=partition, error=repr(e))
        finally:
            await _release(lock)

    async def _isolate_refused(self, partition: int, lock: Lock, fence: int) -> bool:
        """Apply the partition's pending entries (what the failed batch and the one read
        after it held) a batch at a time, halving a refused batch until the entry refused
        alone is found and quarantined. False when the lock was lost meanwhile."""
        stream = self.keyspace.events(partition)
        reader = PartitionReader(self, partition, stream, lock, self._owner)
        while not reader.pending_done:
            entries = await reader.next_entries()
            if entries is None:
                return False
            if entries:
                await self._apply_halving(partition, parse_batch(partition, stream, entries), fence)
                await self.redis.xack(stream, PROJECTOR_GROUP, *[e for e, _ in entries])
        return True

    async def _apply_halving(self, partition: int, batch: Batch, fence: int) -> None:
        try:
            self.applied += await apply_batch(self.pool, partition, batch, fence)
            return
        except Exception as e:
            if not refused_by_postgres(e) or batch.size == 0:
                raise
            error = describe(e)
        if batch.size > 1:
            older, newer = batch.split()
            await self._apply_halving(partition, older, fence)
            await self._apply_halving(partition, newer, fence)
            return
        # Refused alone; quarantined alone. Should even that be refused, the error is not
        # the event's and goes up (the partition is stuck and retried, nothing is skipped).
        await apply_batch(self.pool, partition, batch.refused(f"refused by PostgreSQL: {error}"), fence)

    async def _project(self, partition: int, lock: Lock, fence: int) -> None:
        """Read, fold and commit batches while the lock is ours. One batch commits while
        the next is read and folded (on the rows the first will have written, kept in a
        RowCache), so PostgreSQL and this process work at the same time."""
        stream = self.keyspace.events(partition)
        # The fence is raised: from here on nobody else commits to this partition.
        async with self.pool.acquire() as conn:
            checkpoint = await store.read_checkpoint(conn, partition)
        reader = PartitionReader(self, partition, stream, lock, self._owner)
        cache = RowCache(CACHED_ROWS)
        committing: asyncio.Task[None] | None = None
        try:
            while not self._stopping.is_set():
                entries = await reader.next_entries()
                if entries is None:
                    break  # the lock is gone
                if not entries:
                    await _finish(committing)  # nothing waits: ack what we hold
                    committing = None
                    await reader.wait_for_more()
                    continue
                batch = await parse_in_slices(partition, stream, entries)
                fresh = batch.after(checkpoint)
                folded = None
                if fresh.size:
                    folded = folded_of(fresh, await self._fold(fresh, cache), checkpoint)
                    checkpoint = fresh.last
                await _finish(committing)  # one batch in flight at a time
                committing = asyncio.create_task(
                    self._commit_and_ack(partition, stream, batch.entry_ids, folded, fence)
                )
        except BaseException:
            # Our error is the one to report; the commit in flight ends either way (what it
            # did not commit stays pending for whoever holds the lock next).
            if committing is not None:
                with contextlib.suppress(Exception):
                    await committing
            raise
        await _finish(committing)

    async def _fold(self, batch: Batch, cache: RowCache) -> Changes:
        """Fold on the rows as last written: from the cache, else from PostgreSQL (rows
        this projector has not touched, hence not in the batch being committed)."""
        task_keys, worker_keys = task_ids(batch.events), worker_ids(batch.events)
        tasks: dict[UUID, TaskRow] = {}
        workers: dict[UUID, WorkerRow] = {}
        missing_tasks, missing_workers = cache.tasks.missing(task_keys), cache.workers.missing(worker_keys)
        if missing_tasks or missing_workers:
            async with self.pool.acquire() as conn:
                tasks = await store.load_tasks(conn, missing_tasks)
                workers = await store.load_workers(conn, missing_workers)
        tasks.update(cache.tasks.pick(task_keys - missing_tasks))
        workers.update(cache.workers.pick(worker_keys - missing_workers))
        changes = Changes()
        for start in range(0, len(batch.events), FOLD_SLICE):
            fold_into(changes, batch.events[start : start + FOLD_SLICE], tasks, workers)
            # Let the batch being committed send its next statement: PostgreSQL would
            # otherwise wait for the whole fold at each of its round trips.
            await asyncio.sleep(0)
        cache.remember(changes)
        return changes

    async def _commit_and_ack(
        self, partition: int, stream: str, entry_ids: list[str], folded: Folded | None, fence: int
    ) -> None:
        applied = 0 if folded is None else await commit_folded(self.pool, partition, folded, fence)
        # Only after COMMIT. An entry left unacknowledged (Redis away) is read again by
        # whoever holds the partition next and skipped: it is at or below the checkpoint.
        await self.redis.xack(stream, PROJECTOR_GROUP, *entry_ids)
        self.applied += applied
        log.debug("batch_projected", partition=partition, read=len(entry_ids), applied=applied)


async def _finish(committing: asyncio.Task[None] | None) -> None:
    """Wait for the batch being committed; its failure (FencedOut, ...) is raised here."""
    if committing is not None:
        await committing


async def _release(lock: Lock) -> None:
    # Already expired or taken over: nothing of ours is left to release. Redis away: it
    # expires by itself after the lease.
    with contextlib.suppress(LockError, RedisError, OSError):
        await lock.release()
