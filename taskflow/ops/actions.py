"""Ops acting on one task by its id: ``claim`` (hand its pending dispatch entry to the live
workers now), ``ack`` (give the work up: the task ends CANCELLED) and ``requeue`` (put it
back in line as a new entry). Each is one script that checks the entry is still where it
was found, acts, and appends the task's event and an OperatorActed naming the operator
and the reason, together."""

from __future__ import annotations

import contextlib
import getpass
import socket
from datetime import UTC, datetime
from typing import Literal

import msgspec
from redis.asyncio import Redis

from taskflow.errors import TaskFlowError
from taskflow.events import Envelope, EventDecodeError, OperatorActed, TaskCancelled, TaskQueued, decode
from taskflow.ops.pending import Limits, PendingEntry, pending_entries
from taskflow.ops.scripts import OpsScripts
from taskflow.ops.streams import stream_names
from taskflow.settings import Settings
from taskflow.streams.keyspace import Keyspace

OpsAction = Literal["claim", "ack", "requeue"]
# Pending entries read per dispatch stream while looking for one task's.
SEARCH = 100_000


class ActionRefused(TaskFlowError):
    """The action cannot be done as asked (no pending entry, a live owner, a race lost)."""


class ActionDone(msgspec.Struct, kw_only=True):
    action: OpsAction
    task_id: str
    stream: str
    entry_id: str
    previous_owner: str
    operator: str
    reason: str
    audit_event_id: str
    # ack: the TaskCancelled; requeue: the TaskQueued and the new dispatch entry.
    task_event_id: str = ""
    new_entry_id: str = ""


def default_operator() -> str:
    """Who is acting, as the audit trail names them: ``user@host``."""
    return f"{getpass.getuser()}@{socket.gethostname()}"


async def act(
    redis: Redis,
    keyspace: Keyspace,
    settings: Settings,
    *,
    action: OpsAction,
    task_id: str,
    reason: str,
    operator: str,
    force: bool = False,
) -> ActionDone:
    entry = await find_pending(redis, keyspace, settings, task_id)
    if entry is None:
        raise ActionRefused(f"task {task_id} holds no pending dispatch entry (not delivered, finished, or unknown)")
    if not force and await redis.exists(keyspace.worker_heartbeat(entry.consumer)):
        raise ActionRefused(
            f"worker {entry.consumer} is alive and holds task {task_id}: cancel the task instead "
            "(DELETE /api/v1/tasks/ID), or pass --force"
        )
    partition = keyspace.partition_of(task_id)
    stream_key = stream_names(keyspace)[entry.stream]
    envelope = await _envelope(redis, stream_key, entry, task_id, operator)
    audit = OperatorActed(
        **envelope,
        action=action,
        target_kind="task",
        reason=reason,
        via="cli",
        detail={"stream": entry.stream, "entry_id": entry.entry_id, "owner": entry.consumer},
    )
    scripts = OpsScripts(redis, keyspace)
    done = ActionDone(
        action=action,
        task_id=task_id,
        stream=entry.stream,
        entry_id=entry.entry_id,
        previous_owner=entry.consumer,
        operator=operator,
        reason=reason,
        audit_event_id="",
    )
    if action == "claim":
        outcome, detail = await scripts.hand_off_entry(
            partition=partition,
            stream_key=stream_key,
            entry_id=entry.entry_id,
            owner=entry.consumer,
            idle_ms=int(settings.lease_seconds * 1000),
            audit=audit,
        )
        _check(outcome, detail, task_id)
        done.audit_event_id = detail
        return done
    why = f"{action} by {operator}: {reason}"
    task_event: TaskCancelled | TaskQueued = (
        TaskCancelled(**envelope, reason=why) if action == "ack" else TaskQueued(**envelope, reason="requeued")
    )
    outcome, detail, new_id = await scripts.drop_entry(
        partition=partition,
        stream_key=stream_key,
        entry_id=entry.entry_id,
        owner=entry.consumer,
        how=action,
        task_event=task_event,
        audit=audit,
    )
    _check(outcome, detail, task_id)
    done.task_event_id, done.new_entry_id = detail, new_id
    return done


async def find_pending(redis: Redis, keyspace: Keyspace, settings: Settings, task_id: str) -> PendingEntry | None:
    """The task's pending dispatch entry, in its partition's dispatch streams."""
    partition = keyspace.partition_of(task_id)
    names = [name for name in stream_names(keyspace) if name.startswith(f"dispatch:{partition}:")]
    limits = Limits(max_deliveries=settings.max_deliveries, lease_ms=int(settings.lease_seconds * 1000))
    for entry in await pending_entries(redis, keyspace, limits, streams=names, count=SEARCH):
        if entry.task_id == task_id:
            return entry
    return None


async def _envelope(redis: Redis, stream_key: str, entry: PendingEntry, task_id: str, operator: str) -> Envelope:
    """The action's envelope, in the task's correlation (from the entry's TaskSubmitted)."""
    correlation_id = task_id
    found = await redis.xrange(stream_key, min=entry.entry_id, max=entry.entry_id, count=1)
    if found:
        fields = found[0][1]
        # Should it not decode, the action still goes through; the task's id correlates it.
        with contextlib.suppress(EventDecodeError):
            correlation_id = decode(fields.get("event_id", "0-0"), fields.get("event", "").encode()).correlation_id
    return {
        "aggregate_id": task_id,
        "occurred_at": datetime.now(UTC),
        "correlation_id": correlation_id,
        "causation_id": None,
        "traceparent": None,
        "actor": operator,
        "request_id": None,
    }


def _check(outcome: str, detail: str, task_id: str) -> None:
    if outcome == "moved":
        where = f"to {detail}" if detail else "out of the pending list"
        raise ActionRefused(f"task {task_id}'s entry moved {where} meanwhile; nothing done, look again")
