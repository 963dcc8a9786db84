"""What ``taskflow projections`` does: status, rebuild into the shadow, verify, swap.

``verify`` rebuilds into a scratch schema inside one REPEATABLE READ transaction, compares
it with the live tables as that same snapshot sees them (so a projector committing
meanwhile cannot make a false difference), and rolls everything back.

``swap`` brings the shadow up to the live checkpoint, then, holding the checkpoint rows
(the projector's commits queue behind them), folds the last events in, raises every
partition's fencing token (a running projector's next commit is refused, and it starts
again on the new tables, with a fresh row cache), and moves the tables. Readers wait for
the instant of the move and then read the new tables: no failed read.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import asyncpg
import msgspec
from redis.asyncio import Redis

from taskflow.archive import PROJECTION
from taskflow.errors import TaskFlowError
from taskflow.events import OperatorActed
from taskflow.projections import rebuild, shadow
from taskflow.projections.diff import TableDiff, compare
from taskflow.projections.rebuild import BuildReport, Progress
from taskflow.projections.store import Connection, StreamId
from taskflow.streams.groups import append_event
from taskflow.streams.keyspace import PROJECTOR_GROUP, Keyspace

VERIFY_SCHEMA = "taskflow_verify"


class NoShadow(TaskFlowError):
    """``swap`` without a shadow to swap in."""


class PartitionStatus(msgspec.Struct, kw_only=True):
    partition: int
    checkpoint: str
    checkpoint_updated_at: datetime | None
    fence: int
    stream_last_id: str | None
    # Entries of the stream the projector has not acknowledged (read or not).
    unprojected: int | None
    # How far the checkpoint trails the newest entry, in the entries' own time.
    behind_seconds: float | None


class ShadowStatus(msgspec.Struct, kw_only=True):
    built_at: datetime
    events: int
    checkpoints: dict[int, str]
    # Archived events the shadow has not folded yet (a swap folds them in first).
    behind_live: int


class Status(msgspec.Struct, kw_only=True):
    per_partition: list[PartitionStatus]
    shadow: ShadowStatus | None


class VerifyReport(msgspec.Struct, kw_only=True):
    build: BuildReport
    tables: list[TableDiff]

    @property
    def clean(self) -> bool:
        return all(t.clean for t in self.tables)


class SwapReport(msgspec.Struct, kw_only=True):
    caught_up_before: int
    caught_up_locked: int
    checkpoints: dict[int, str]
    fences: dict[int, int]
    locked_seconds: float


async def status(pool: asyncpg.Pool, redis: Redis, keyspace: Keyspace) -> Status:
    rows = {
        int(r["partition"]): r
        for r in await pool.fetch(
            "SELECT partition, last_ms, last_seq, fence, updated_at FROM projection_checkpoints WHERE projection = $1",
            PROJECTION,
        )
    }
    partitions = []
    for p in keyspace.all_partitions:
        row = rows.get(p)
        checkpoint = (0, 0) if row is None else (int(row["last_ms"]), int(row["last_seq"]))
        last_id, unprojected = await _stream_state(redis, keyspace.events(p))
        behind = None if last_id is None else max(0.0, (int(last_id.split("-")[0]) - checkpoint[0]) / 1000)
        partitions.append(
            PartitionStatus(
                partition=p,
                checkpoint=f"{checkpoint[0]}-{checkpoint[1]}",
                checkpoint_updated_at=None if row is None else row["updated_at"],
                fence=0 if row is None else int(row["fence"]),
                stream_last_id=last_id,
                unprojected=unprojected,
                behind_seconds=behind if unprojected else 0.0,
            )
        )
    async with pool.acquire() as conn:
        found = await _shadow_status(conn)
    return Status(per_partition=partitions, shadow=found)


async def _stream_state(redis: Redis, stream: str) -> tuple[str | None, int | None]:
    if not await redis.exists(stream):
        return None, None
    info = await redis.xinfo_stream(stream)
    last = str(info["last-generated-id"])
    unprojected = None
    for group in await redis.xinfo_groups(stream):
        if group["name"] == PROJECTOR_GROUP and group.get("lag") is not None:
            unprojected = int(group["lag"]) + int(group["pending"])
    return (None if last == "0-0" else last), unprojected


async def _shadow_status(conn: Connection) -> ShadowStatus | None:
    if not await shadow.exists(conn, shadow.SHADOW):
        return None
    built = await conn.fetchrow(f"SELECT built_at, events FROM {shadow.SHADOW}.shadow_built")
    checkpoints = await rebuild.built_checkpoints(conn, shadow.SHADOW)
    behind = await rebuild.archived_count(conn, await rebuild.live_checkpoints(conn), after=checkpoints)
    assert built is not None
    return ShadowStatus(
        built_at=built["built_at"],
        events=int(built["events"]),
        checkpoints={p: f"{ms}-{seq}" for p, (ms, seq) in checkpoints.items()},
        behind_live=behind,
    )


async def rebuild_shadow(
    pool: asyncpg.Pool, *, dead_letter_retention: timedelta, on_progress: Progress | None = None
) -> BuildReport:
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        return await rebuild.build(
            conn, shadow.SHADOW, dead_letter_retention=dead_letter_retention, on_progress=on_progress
        )


async def events_to_rebuild(pool: asyncpg.Pool) -> int:
    """How many events a rebuild folds now (for a progress bar's total)."""
    async with pool.acquire() as conn:
        return await rebuild.archived_count(conn, await rebuild.live_checkpoints(conn))


async def verify(
    pool: asyncpg.Pool, *, dead_letter_retention: timedelta, show: int = 20, on_progress: Progress | None = None
) -> VerifyReport:
    async with pool.acquire() as conn:
        transaction = conn.transaction(isolation="repeatable_read")
        await transaction.start()
        try:
            live = await shadow.live_schema(conn)
            built = await rebuild.build(
                conn, VERIFY_SCHEMA, dead_letter_retention=dead_letter_retention, on_progress=on_progress
            )
            tables = await compare(conn, live, VERIFY_SCHEMA, show=show, dead_letter_retention=dead_letter_retention)
        finally:
            await transaction.rollback()  # the scratch schema goes with it
    return VerifyReport(build=built, tables=tables)


async def swap(pool: asyncpg.Pool, redis: Redis, keyspace: Keyspace, audit: OperatorActed | None = None) -> SwapReport:
    """The swap; ``audit`` (who asked, why) is appended once the new tables are live. (Not
    in the same step: PostgreSQL commits the swap, Redis holds the log; a crash between
    the two leaves a swap without its record, never a record without a swap.)"""
    async with pool.acquire() as conn:
        if not await shadow.exists(conn, shadow.SHADOW):
            raise NoShadow("no shadow to swap in: run `taskflow projections rebuild` first")
        live = await shadow.live_schema(conn)
        async with conn.transaction():
            before = await rebuild.catch_up(conn, shadow.SHADOW, await rebuild.live_checkpoints(conn))
        async with conn.transaction():
            locked_at = time.perf_counter()
            held = await _hold_checkpoints(conn)
            during = await rebuild.catch_up(conn, shadow.SHADOW, held)
            fences = {}
            for p in held:
                # A token above every one handed out: the running projector's is refused.
                fences[p] = int(await redis.incr(keyspace.projector_fence(p)))
                await conn.execute(
                    "UPDATE projection_checkpoints SET fence = GREATEST(fence, $2) "
                    "WHERE projection = $1 AND partition = $3",
                    PROJECTION,
                    fences[p],
                    p,
                )
            await shadow.move_in(conn, live, shadow.SHADOW)
        locked_s = time.perf_counter() - locked_at
    if audit is not None:
        detail = {f"checkpoint_{p}": f"{ms}-{seq}" for p, (ms, seq) in held.items()}
        await append_event(redis, keyspace, msgspec.structs.replace(audit, detail={**audit.detail, **detail}))
    return SwapReport(
        caught_up_before=before,
        caught_up_locked=during,
        checkpoints={p: f"{ms}-{seq}" for p, (ms, seq) in held.items()},
        fences=fences,
        locked_seconds=locked_s,
    )


async def _hold_checkpoints(conn: Connection) -> dict[int, StreamId]:
    rows = await conn.fetch(
        "SELECT partition, last_ms, last_seq FROM projection_checkpoints WHERE projection = $1 "
        "ORDER BY partition FOR UPDATE",
        PROJECTION,
    )
    return {int(r["partition"]): (int(r["last_ms"]), int(r["last_seq"])) for r in rows}
