"""The commit path: a folded batch written as rows, archive, quarantine and checkpoint in
ONE transaction under the checkpoint's lock and fence (ARCHITECTURE invariants 4 and 6).

``apply_batch`` reads the rows it folds on and commits (the reference path, and what tests
call); ``commit_folded`` commits a batch the Projector folded ahead of time (ADR 0013).
Nothing here touches Redis: the XACK after COMMIT is the Projector's.
"""

from __future__ import annotations

import asyncpg
import msgspec
import structlog

from taskflow.projections import store
from taskflow.projections.batch import Changes, fold_batch, task_ids, worker_ids
from taskflow.projections.reading import Batch, quarantined_record

log = structlog.get_logger()


class Folded(msgspec.Struct, frozen=True):
    """A batch ready to commit: what to archive, the rows to write (quarantined entries
    included), and the checkpoint it moves from ``previous`` to ``last``."""

    records: list[store.ArchiveRecord]
    changes: Changes
    previous: store.StreamId
    last: store.StreamId


def folded_of(batch: Batch, changes: Changes, previous: store.StreamId) -> Folded:
    """The batch as it will commit: events a fold failed on and entries that did not
    decode leave the archive for the quarantine, in the same transaction."""
    records = batch.records
    changes.quarantined.extend(batch.undecodable)
    if changes.unfoldable:
        records = [r for r in batch.records if r.event_id not in changes.unfoldable]
        changes.quarantined.extend(
            quarantined_record(batch.stream, r, f"fold failed: {changes.unfoldable[r.event_id]}")
            for r in batch.records
            if r.event_id in changes.unfoldable
        )
    return Folded(records, changes, previous, batch.last)


async def apply_batch(pool: asyncpg.Pool, partition: int, batch: Batch, fence: int) -> int:
    """Commit the events above the checkpoint in one transaction, reading the rows they
    fold onto from PostgreSQL; returns how many were applied. (The Projector pipelines
    the same steps: it folds the next batch while this one commits.)

    Raises ``store.FencedOut`` (and writes nothing) if a projector with a newer fencing
    token has committed meanwhile.
    """
    async with pool.acquire() as conn, conn.transaction():
        checkpoint = await store.lock_checkpoint(conn, partition, fence)
        fresh = batch.after(checkpoint)
        if not fresh.size:
            return 0
        tasks = await store.load_tasks(conn, task_ids(fresh.events))
        workers = await store.load_workers(conn, worker_ids(fresh.events))
        folded = folded_of(fresh, fold_batch(fresh.events, tasks, workers), checkpoint)
        await _write(conn, partition, folded, fence)
    _log_quarantined(folded)
    return fresh.size


async def commit_folded(pool: asyncpg.Pool, partition: int, folded: Folded, fence: int) -> int:
    """Commit a batch folded ahead of time (on top of ``folded.previous``); returns how
    many events it applied: 0 when a retry finds it committed already."""
    async with pool.acquire() as conn, conn.transaction():
        checkpoint = await store.lock_checkpoint(conn, partition, fence)
        if checkpoint >= folded.last:
            return 0  # the commit went through before the connection dropped
        if checkpoint != folded.previous:
            raise store.FencedOut(f"partition {partition}: checkpoint {checkpoint}, expected {folded.previous}")
        await _write(conn, partition, folded, fence)
    _log_quarantined(folded)
    return len(folded.records)


async def _write(conn: store.Connection, partition: int, folded: Folded, fence: int) -> None:
    await store.archive(conn, folded.records)
    await store.write_changes(conn, folded.changes)
    await store.advance_checkpoint(conn, partition, folded.last, fence)


def _log_quarantined(folded: Folded) -> None:
    """Once per entry, after its quarantine row committed (a redelivery is skipped by the
    checkpoint). Dispatch entries were logged by the worker that rejected them."""
    for record in folded.changes.quarantined:
        if record.source == "projector":
            log.error(
                "entry_quarantined",
                stream=record.stream,
                entry_id=record.entry_id,
                event_type=record.event_type,
                aggregate_id=record.aggregate_id,
                error=record.error,
            )
