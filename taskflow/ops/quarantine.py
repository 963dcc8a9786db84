"""The quarantine as ops see it (``taskflow streams quarantine``): the entries the projector
kept in ``quarantined_entries`` instead of projecting them (ADR 0014), and their retry
once a fix makes them events again.

A retry re-appends the entry's bytes, unchanged, to its partition's events stream: the
projector then projects and archives it like any new event, under a new stream id. Then
the quarantine row goes. The two cannot be one transaction (Redis, then PostgreSQL), and
re-projecting is NOT idempotent: the event would be archived twice under two ids, and
folds such as a failure's retry count would count it twice. So the append goes through a
script that records, in the same step, which entry was re-appended as which
(``Keyspace.quarantine_retried``). A crash between the append and the delete leaves the
row; the next retry finds the record, appends nothing and only deletes the row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, assert_never

import asyncpg
import msgspec
from redis.asyncio import Redis

from taskflow.events import EventDecodeError, decode, tag_of
from taskflow.ops.scripts import OpsScripts
from taskflow.streams.keyspace import Keyspace

# Why a dispatch entry is not retried here: it is no event. The worker that could not
# read it took it off its stream and said so (DispatchRejected); projecting that dead-
# lettered the task it names, whose TaskSubmitted is intact. Requeuing the task from the
# dead-letter queue dispatches it again, from that event; appending the broken entry's
# fields again would only be rejected again (or run a task twice).
NOT_RETRYABLE = "a dispatch entry (worker): requeue its task from the dead-letter queue instead"


class QuarantinedEntry(msgspec.Struct, kw_only=True):
    stream: str
    entry_id: str
    partition: int
    source: Literal["projector", "worker"]
    event_type: str | None
    aggregate_id: str | None
    error: str
    quarantined_at: datetime


class Reappend(msgspec.Struct, frozen=True, kw_only=True):
    """Decodes now: append it again."""

    event_type: str


class StillBroken(msgspec.Struct, frozen=True, kw_only=True):
    error: str


class NotRetryable(msgspec.Struct, frozen=True, kw_only=True):
    reason: str


class RetryOutcome(msgspec.Struct, kw_only=True):
    stream: str
    entry_id: str
    outcome: Literal["reappended", "still_failing", "not_retryable"]
    # The id the event has in the events stream now (reappended only).
    new_entry_id: str | None = None
    error: str | None = None


def decide_retry(source: str, entry_id: str, raw: bytes) -> Reappend | StillBroken | NotRetryable:
    """What a retry does with one quarantined entry, given its bytes as kept."""
    if source != "projector":
        return NotRetryable(reason=NOT_RETRYABLE)
    try:
        event = decode(entry_id, raw)
    except EventDecodeError as e:
        return StillBroken(error=str(e))
    return Reappend(event_type=tag_of(event))


_COLUMNS = "stream, entry_id, partition, source, event_type, aggregate_id, error, quarantined_at"


async def quarantined_entries(pool: asyncpg.Pool, limit: int) -> list[QuarantinedEntry]:
    """The newest ``limit`` entries of the quarantine, newest first."""
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM quarantined_entries ORDER BY quarantined_at DESC, stream DESC, entry_id DESC LIMIT $1",
        limit,
    )
    return [QuarantinedEntry(**dict(row)) for row in rows]


async def retry(
    redis: Redis, pool: asyncpg.Pool, keyspace: Keyspace, entries: list[tuple[str, str]] | None
) -> list[RetryOutcome]:
    """Retry the quarantined entries named by (stream key, entry id), or all of them
    (``None``), oldest first; names that match no row are left out of the answer."""
    sql = f"SELECT {_COLUMNS}, raw FROM quarantined_entries"
    if entries is None:
        rows = await pool.fetch(sql + " ORDER BY id_ms, id_seq, stream")
    else:
        rows = await pool.fetch(
            sql + " WHERE (stream, entry_id) IN (SELECT * FROM unnest($1::text[], $2::text[])) ORDER BY id_ms, id_seq",
            [stream for stream, _ in entries],
            [entry_id for _, entry_id in entries],
        )
    scripts = OpsScripts(redis, keyspace)
    return [await _retry_one(scripts, pool, row) for row in rows]


async def _retry_one(scripts: OpsScripts, pool: asyncpg.Pool, row: asyncpg.Record) -> RetryOutcome:
    stream, entry_id, raw = str(row["stream"]), str(row["entry_id"]), bytes(row["raw"])
    decision = decide_retry(row["source"], entry_id, raw)
    match decision:
        case NotRetryable(reason=reason):
            return RetryOutcome(stream=stream, entry_id=entry_id, outcome="not_retryable", error=reason)
        case StillBroken(error=error):
            return RetryOutcome(stream=stream, entry_id=entry_id, outcome="still_failing", error=error)
        case Reappend(event_type=event_type):
            # Append first, then delete: a crash in between leaves the row, to be retried
            # (the script then finds the entry appended and appends nothing); the other
            # order could lose the event. The row's partition is the stream it was read
            # from, so the event goes back beside its aggregate's other events (invariant 6).
            new_id = await scripts.reappend_quarantined(
                partition=int(row["partition"]), entry_id=entry_id, event_type=event_type, payload=raw
            )
            await pool.execute("DELETE FROM quarantined_entries WHERE stream = $1 AND entry_id = $2", stream, entry_id)
            return RetryOutcome(stream=stream, entry_id=entry_id, outcome="reappended", new_entry_id=new_id)
        case _:
            assert_never(decision)
