"""A partition's entries read from Redis for its projector, under the partition's lock
(``projector_read.lua``): pending entries first, then new ones; and the idle wait for
more. Parsing what is read into a ``Batch`` is ``reading``'s."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import structlog
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, RedisError

from taskflow.outage import REDIS_AWAY

if TYPE_CHECKING:
    # Only for the annotation: the projector makes the reader, not the other way round.
    from taskflow.projections.projector import Projector

log = structlog.get_logger()
# Up to this many events per transaction: per-batch costs (round trips, the checkpoint
# lock, statement set-up) shrink with bigger batches, and a task's events are more often
# folded into one row write. 4,000 gave ~20% more events/s than 1,000 (docs/benchmarks.md).
BATCH_SIZE = 4000
READ_BLOCK_MS = 1000
# Under a steady flow, a read that found only a few new entries is followed by a short
# pause, so the next batch gathers more: each transaction has a fixed cost (a dozen
# statements and a WAL flush), and at ~20 events per batch that cost took more CPU than
# the events themselves, CPU the workers on the same machine went without (a campaign
# sent 800 mails/s without the pause, 1,035 with it; ADR 0031). A trickle is not
# delayed: an empty read ends the gathering, and the next event is read when it comes.
GATHER_BELOW = 500
GATHER_S = 0.02
# The pause before trying again after Redis or PostgreSQL failed (the projector's loops too).
RETRY_DELAY_S = 1.0


class PartitionReader:
    """A partition's entries for its projector: its own pending ones first (a restarted
    projector finishes what its predecessor read), then new ones; every read checks the
    lock in the same script (projector_read.lua)."""

    def __init__(self, projector: Projector, partition: int, stream: str, lock: Lock, token: str) -> None:
        self._projector = projector
        self._token = token
        self._stream = stream
        self._lock = lock
        self._partition = partition
        # The consumer name is the partition's, so a successor reads its predecessor's
        # pending entries.
        self._consumer = f"projector-{partition}"
        # Pending entries after this id; ">" once they are all read.
        self._cursor = "0"
        # Whether the last read asked for new entries (only then is an empty answer a
        # reason to wait: after the pending ones run out, new ones may be waiting).
        self._read_new = False
        self._last_read = 0
        self._renew_every_s = projector.settings.lease_seconds / 3
        self._renewed_at = asyncio.get_running_loop().time()

    @property
    def pending_done(self) -> bool:
        """Whether every entry read earlier and not acked has been read again."""
        return self._cursor == ">"

    async def next_entries(self) -> list[tuple[str, dict[str, str]]] | None:
        """The next batch (maybe empty); None once the lock is no longer ours."""
        p = self._projector
        try:
            if not await self._renew_lock():
                log.warning("projector_partition_lost", stream=self._stream)
                return None
            self._read_new = self._cursor == ">"
            if self._read_new and gather_first(self._last_read):
                await asyncio.sleep(GATHER_S)
            entries = await p.scripts.projector_read(
                partition=self._partition,
                token=self._token,
                consumer=self._consumer,
                count=BATCH_SIZE,
                start_id=self._cursor,
            )
        except REDIS_AWAY as e:
            p.redis_outage.failed(e)
            await asyncio.sleep(RETRY_DELAY_S)
            return []
        except RedisError as e:
            log.warning("projector_read_failed", error=str(e))
            await asyncio.sleep(RETRY_DELAY_S)
            return []
        p.redis_outage.succeeded()
        self._last_read = len(entries)
        if self._cursor != ">":
            # Past what was just read, so the batch still committing is not read twice.
            self._cursor = entries[-1][0] if entries else ">"
        return entries

    async def wait_for_more(self) -> None:
        """Block until the stream grows, without taking anything from the group (a plain
        XREAD), so the next read goes through the lock check again."""
        if not self._read_new:
            return
        try:
            newest = await self._projector.redis.xrevrange(self._stream, count=1)
            after = newest[0][0] if newest else "0-0"
            await self._projector.redis.xread({self._stream: after}, count=1, block=READ_BLOCK_MS)
        except REDIS_AWAY as e:
            self._projector.redis_outage.failed(e)
            await asyncio.sleep(RETRY_DELAY_S)
        except RedisError as e:
            log.warning("projector_wait_failed", error=str(e))
            await asyncio.sleep(RETRY_DELAY_S)

    async def _renew_lock(self) -> bool:
        now = asyncio.get_running_loop().time()
        if now - self._renewed_at < self._renew_every_s:
            return True
        try:
            await self._lock.reacquire()
        except LockError:
            return False
        self._renewed_at = now
        return True


def gather_first(last_read: int) -> bool:
    """Whether to let new entries gather before the next read: the last read found some,
    but few (a steady flow in small batches), rather than none (idle) or many."""
    return 0 < last_read < GATHER_BELOW
