"""What ``taskflow reconcile --repair`` does, in the order that keeps it safe: groups
first (that creates a missing stream), then stream ids past the archive (so the events
the repair itself appends are projected, not skipped), then the lost tasks put back in
line from their archived ``TaskSubmitted``, each with a ``TaskQueued(reason="requeued")``
saying so, through ``restore_task.lua`` (at most once per task, see there)."""

from __future__ import annotations

from datetime import datetime

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from taskflow.events import EventDecodeError, TaskQueued, TaskSubmitted, decode
from taskflow.ops.reconcile import LostTask, MissingGroup, Repair, Report, StreamBehind, TaskCandidate, restore_of
from taskflow.ops.scripts import OpsScripts
from taskflow.streams.groups import ensure_groups
from taskflow.streams.keyspace import Keyspace

ACTOR = "taskflow-reconcile"


async def repair_groups(redis: Redis, keyspace: Keyspace, missing: list[MissingGroup]) -> list[Repair]:
    """``ensure_groups``: every missing group (and stream) made, from id 0, so the group
    gets whatever the stream holds; the projector skips what it archived already."""
    if missing:
        await ensure_groups(redis, keyspace)
    return [Repair(what="group", target=f"{m.stream} {m.group}", outcome="repaired") for m in missing]


async def repair_stream_ids(redis: Redis, behind: list[StreamBehind]) -> list[Repair]:
    repairs = []
    for b in behind:
        try:
            # XSETID refuses an id below the stream's newest entry: then entries were
            # appended since the survey, above the floor already, and nothing is needed.
            # redis-py has no XSETID method; the raw command is untyped there.
            await redis.execute_command("XSETID", b.key, b.move_to)  # type: ignore[no-untyped-call]
        except ResponseError as e:
            repairs.append(Repair(what="stream_id", target=b.stream, outcome="failed", detail=str(e)))
            continue
        repairs.append(Repair(what="stream_id", target=b.stream, outcome="repaired", detail=f"now at {b.move_to}"))
    return repairs


async def restore_tasks(
    redis: Redis,
    pool: asyncpg.Pool,
    keyspace: Keyspace,
    lost: list[LostTask],
    candidates: list[TaskCandidate],
    *,
    now: datetime,
    marker_ttl_seconds: int,
) -> list[Repair]:
    submissions = await archived_submissions(pool, [t.task_id for t in lost])
    due = {c.task_id: c.scheduled_at for c in candidates}
    scripts = OpsScripts(redis, keyspace)
    repairs = []
    for task in lost:
        submitted = submissions.get(task.task_id)
        if submitted is None:
            repairs.append(
                Repair(what="task", target=task.task_id, outcome="failed", detail="no TaskSubmitted in the archive")
            )
            continue
        restore = restore_of(task.status, due.get(task.task_id), now)
        queued = TaskQueued(
            aggregate_id=task.task_id,
            occurred_at=now,
            correlation_id=submitted.correlation_id,
            causation_id=submitted.event_id,
            actor=ACTOR,
            reason="requeued",
        )
        outcome, detail = await scripts.restore_task(
            submitted=submitted,
            queued=queued,
            mode=restore.mode,
            due_ms=restore.due_ms,
            marker_ttl_seconds=marker_ttl_seconds,
        )
        if outcome == "restored":
            repairs.append(Repair(what="task", target=task.task_id, outcome="repaired", detail=restore.mode))
        else:
            repairs.append(Repair(what="task", target=task.task_id, outcome="already_repaired", detail=detail))
    return repairs


async def archived_submissions(pool: asyncpg.Pool, task_ids: list[str]) -> dict[str, TaskSubmitted]:
    """Each task's first ``TaskSubmitted`` in the archive (what it was accepted as)."""
    if not task_ids:
        return {}
    rows = await pool.fetch(
        "SELECT DISTINCT ON (aggregate_id) aggregate_id, event_id, payload FROM event_archive "
        "WHERE aggregate_id = ANY($1::text[]) AND event_type = 'task.submitted' "
        "ORDER BY aggregate_id, partition, id_ms, id_seq",
        task_ids,
    )
    found: dict[str, TaskSubmitted] = {}
    for row in rows:
        try:
            event = decode(row["event_id"], row["payload"].encode())
        except EventDecodeError:
            continue  # reported as not archived: nothing we could dispatch from
        if isinstance(event, TaskSubmitted):
            found[row["aggregate_id"]] = event
    return found


async def repair(
    redis: Redis,
    pool: asyncpg.Pool,
    keyspace: Keyspace,
    report: Report,
    candidates: list[TaskCandidate],
    *,
    now: datetime,
    marker_ttl_seconds: int,
) -> list[Repair]:
    """Every repair the report calls for, in the module docstring's order."""
    repairs = await repair_groups(redis, keyspace, report.missing_groups)
    repairs += await repair_stream_ids(redis, report.streams_behind)
    if any(r.outcome == "failed" for r in repairs):
        # A stream still behind would swallow the TaskQueued events: restore nothing yet.
        return repairs
    return repairs + await restore_tasks(
        redis, pool, keyspace, report.lost_tasks, candidates, now=now, marker_ttl_seconds=marker_ttl_seconds
    )
