"""The Lua scripts, registered once per client, with one typed wrapper each.

Every key reaches a script through ``KEYS`` and all keys of one call share a ``{p}`` hash
tag, so the scripts run unchanged on Redis Cluster (ARCHITECTURE invariant 7).
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any, Literal

import msgspec
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript
from redis.typing import EncodableT

from taskflow import keys
from taskflow.dispatch import HeldDispatch, dispatch_mode, due_ms, encode_held
from taskflow.errors import TaskFlowError
from taskflow.events import (
    ScheduleCreated,
    ScheduleDeleted,
    TaskCancelled,
    TaskCancelRequested,
    TaskQueued,
    TaskSubmitted,
    WorkerDied,
    encode,
    tag_of,
)


def _source(name: str) -> str:
    return files("taskflow.lua").joinpath(f"{name}.lua").read_text()


class SubmitOutcome(msgspec.Struct, frozen=True):
    created: bool
    event_id: str
    fingerprint: str


class ReclaimedEntry(msgspec.Struct, frozen=True):
    entry_id: str
    previous_owner: str
    idle_ms: int
    delivery_count: int
    runs_begun: int
    fields: dict[str, str]


AppendKind = Literal["start", "finish", "retry", "note"]


class Scripts:
    """Holds the registered scripts of one Redis client."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._submit: AsyncScript = redis.register_script(_source("submit"))
        self._owned_append: AsyncScript = redis.register_script(_source("owned_append"))
        self._renew_lease: AsyncScript = redis.register_script(_source("renew_lease"))
        self._reclaim: AsyncScript = redis.register_script(_source("reclaim"))
        self._projector_read: AsyncScript = redis.register_script(_source("projector_read"))
        self._lead: AsyncScript = redis.register_script(_source("lead"))
        self._promote: AsyncScript = redis.register_script(_source("promote"))
        self._cancel: AsyncScript = redis.register_script(_source("cancel"))
        self._requeue: AsyncScript = redis.register_script(_source("requeue"))
        self._bury: AsyncScript = redis.register_script(_source("bury"))
        self._schedule_create: AsyncScript = redis.register_script(_source("schedule_create"))
        self._schedule_delete: AsyncScript = redis.register_script(_source("schedule_delete"))
        self._schedule_advance: AsyncScript = redis.register_script(_source("schedule_advance"))
        self._all = [v for v in vars(self).values() if isinstance(v, AsyncScript)]

    async def submit(
        self, *, ns: str, partitions: int, event: TaskSubmitted, fingerprint: str, marker_ttl_seconds: int
    ) -> SubmitOutcome:
        """Append ``event`` and put its task in line as ``dispatch_mode`` decides (on its
        dispatch stream, held until due, or waiting for its parents), in one atomic step
        (invariants 2, 3). The one way a submission is appended: the gateway, cron ticks,
        the benchmarks and the tests all come here.

        The marker remembers the task for ``marker_ttl_seconds`` past its due time: it
        also carries the task's live state, so it must outlast a far schedule."""
        task_id = event.aggregate_id
        partition = keys.partition_of(task_id, partitions)
        mode = dispatch_mode(event)
        occurred_ms = int(event.occurred_at.timestamp() * 1000)
        held_until_ms = due_ms(event) or occurred_ms
        result: list[Any] = await self._submit(
            keys=[
                keys.events(ns, partition),
                keys.dispatch(ns, partition, event.priority),
                keys.task_marker(ns, partition, task_id),
                keys.held_due(ns, partition),
                keys.held(ns, partition),
                keys.waiting(ns, partition),
            ],
            args=[
                tag_of(event),
                encode(event),
                task_id,
                fingerprint,
                marker_ttl_seconds + max(0, (held_until_ms - occurred_ms) // 1000),
                mode,
                held_until_ms,
                event.priority,
            ],
        )
        return SubmitOutcome(created=bool(result[0]), event_id=str(result[1]), fingerprint=str(result[2] or ""))

    async def owned_append(
        self,
        *,
        ns: str,
        partition: int,
        dispatch_stream: str,
        consumer: str,
        entry_id: str,
        event_type: str,
        payload: bytes,
        kind: AppendKind,
        task_id: str,
        final_state: str = "",
        retry: tuple[HeldDispatch, int] | None = None,
        pipeline: Pipeline | None = None,
    ) -> str | None:
        """Append an event while ``consumer`` owns ``entry_id``; a ``finish`` also XACKs it,
        a ``retry`` also holds ``retry`` (the dispatch, its due time in ms) for later.

        Inside a pipeline the answer arrives with ``pipeline.execute()`` instead.
        """
        held, due_ms = retry if retry is not None else (None, 0)
        script_keys = [
            dispatch_stream,
            keys.events(ns, partition),
            keys.starts(ns, partition),
            keys.held_due(ns, partition),
            keys.held(ns, partition),
            keys.task_marker(ns, partition, task_id),
        ]
        args: list[EncodableT] = [
            keys.WORKERS_GROUP,
            consumer,
            entry_id,
            event_type,
            payload,
            kind,
            due_ms,
            task_id,
            encode_held(held) if held else "",
            final_state,
        ]
        if pipeline is not None:
            # EVALSHA straight into the pipeline: a registered script would make every
            # pipeline.execute() ask SCRIPT EXISTS first, one more round trip per flush.
            # The caller loads the scripts (``load``) and again on NoScriptError.
            pipeline.evalsha(self._owned_append.sha, len(script_keys), *script_keys, *args)
            return None
        answer = await self._owned_append(keys=script_keys, args=args)
        return str(answer) if answer else None

    async def load(self) -> None:
        """Make sure the server has every script (after a restart or SCRIPT FLUSH)."""
        for script in self._all:
            script.sha = await self.redis.script_load(script.script)

    async def renew_lease(self, *, dispatch_stream: str, consumer: str, entry_ids: list[str]) -> set[str]:
        """Renew the lease of the given entries; returns those still owned."""
        if not entry_ids:
            return set()
        owned = await self._renew_lease(keys=[dispatch_stream], args=[keys.WORKERS_GROUP, consumer, *entry_ids])
        return {str(i) for i in owned}

    async def reclaim(
        self, *, dispatch_stream: str, starts_hash: str, consumer: str, min_idle_ms: int, count: int
    ) -> list[ReclaimedEntry]:
        rows = await self._reclaim(
            keys=[dispatch_stream, starts_hash], args=[keys.WORKERS_GROUP, consumer, min_idle_ms, count]
        )
        return [
            ReclaimedEntry(
                entry_id=str(row[0]),
                previous_owner=str(row[1]),
                idle_ms=int(row[2]),
                delivery_count=int(row[3]),
                runs_begun=int(row[4]),
                fields=_pairs(row[5]),
            )
            for row in rows
        ]

    async def lead(self, *, ns: str, partition: int, candidate: str, lease_ms: int) -> str | None:
        """Take or keep the leadership of ``partition``: ``id|fence`` while we lead."""
        value = await self._lead(
            keys=[keys.coordinator_leader(ns, partition), keys.coordinator_fence(ns, partition)],
            args=[candidate, lease_ms],
        )
        return str(value) if value else None

    async def promote(
        self,
        *,
        ns: str,
        partition: int,
        leader: str,
        held: HeldDispatch,
        queued: TaskQueued,
        pipeline: Pipeline | None = None,
        from_waiting: bool = False,
    ) -> str | None:
        """Queue a held task's dispatch: from the schedule (its time came) or, with
        ``from_waiting``, from the tasks waiting on parents. The TaskQueued event id, or
        None; inside a pipeline the answer comes from ``pipeline.execute()``."""
        answer = await self._promote(
            keys=[
                keys.coordinator_leader(ns, partition),
                keys.waiting(ns, partition) if from_waiting else keys.held_due(ns, partition),
                keys.held(ns, partition),
                keys.dispatch(ns, partition, held.priority),
                keys.events(ns, partition),
                keys.task_marker(ns, partition, held.task_id),
            ],
            args=[leader, held.task_id, encode(queued), tag_of(queued)],
            client=pipeline,
        )
        return None if pipeline is not None or not answer else str(answer)

    async def cancel(
        self,
        *,
        ns: str,
        partition: int,
        task_id: str,
        cancelled: TaskCancelled,
        requested: TaskCancelRequested | None,
    ) -> tuple[str, str]:
        """Cancel by live state: ("cancelled" | "cancelling" | "terminal:<state>" | "unknown", event id)."""
        outcome, event_id = await self._cancel(
            keys=[
                keys.task_marker(ns, partition, task_id),
                keys.held_due(ns, partition),
                keys.held(ns, partition),
                keys.events(ns, partition),
                keys.waiting(ns, partition),
            ],
            args=[
                task_id,
                encode(cancelled),
                b"" if requested is None else encode(requested),
                tag_of(cancelled),
                "" if requested is None else tag_of(requested),
            ],
        )
        return str(outcome), str(event_id)

    async def requeue(
        self,
        *,
        ns: str,
        partition: int,
        submitted: TaskSubmitted,
        queued: TaskQueued,
        marker_ttl_seconds: int,
        projected_state: str,
    ) -> tuple[str, str]:
        """Re-dispatch a failed / timed-out / cancelled task: ("requeued", event id) or
        ("conflict", its state)."""
        task_id = submitted.aggregate_id
        outcome, detail = await self._requeue(
            keys=[
                keys.task_marker(ns, partition, task_id),
                keys.dispatch(ns, partition, submitted.priority),
                keys.events(ns, partition),
            ],
            args=[
                task_id,
                submitted.event_id,
                encode(submitted),
                encode(queued),
                marker_ttl_seconds,
                projected_state,
                tag_of(queued),
            ],
        )
        return str(outcome), str(detail)

    async def bury(
        self, *, ns: str, partition: int, leader: str, worker_id: str, silent_since_ms: int, died: WorkerDied
    ) -> str | None:
        """Record WorkerDied if the worker is still silent and we still lead ``partition``."""
        answer = await self._bury(
            keys=[
                keys.coordinator_leader(ns, partition),
                keys.worker_registry(ns, partition),
                keys.events(ns, partition),
            ],
            args=[leader, worker_id, silent_since_ms, encode(died), tag_of(died)],
        )
        return str(answer) if answer else None

    async def schedule_create(
        self,
        *,
        ns: str,
        partition: int,
        schedule_id: str,
        definition: bytes,
        first_due_ms: int,
        created: ScheduleCreated,
    ) -> str:
        answer = await self._schedule_create(
            keys=[keys.cron_schedules(ns, partition), keys.cron_due(ns, partition), keys.events(ns, partition)],
            args=[schedule_id, definition, first_due_ms, encode(created), tag_of(created)],
        )
        return str(answer)

    async def schedule_delete(
        self, *, ns: str, partition: int, schedule_id: str, deleted: ScheduleDeleted
    ) -> str | None:
        answer = await self._schedule_delete(
            keys=[keys.cron_schedules(ns, partition), keys.cron_due(ns, partition), keys.events(ns, partition)],
            args=[schedule_id, encode(deleted), tag_of(deleted)],
        )
        return str(answer) if answer else None

    async def schedule_advance(
        self, *, ns: str, partition: int, leader: str, schedule_id: str, tick_ms: int, next_ms: int
    ) -> bool:
        answer = await self._schedule_advance(
            keys=[keys.coordinator_leader(ns, partition), keys.cron_due(ns, partition)],
            args=[leader, schedule_id, tick_ms, next_ms],
        )
        return bool(answer)

    async def projector_read(
        self, *, lock_key: str, stream: str, token: str, consumer: str, count: int, start_id: str
    ) -> list[tuple[str, dict[str, str]]]:
        """XREADGROUP for the projector, refused (``LockLost``) once its lock moved on."""
        answer = await self._projector_read(
            keys=[lock_key, stream], args=[token, keys.PROJECTOR_GROUP, consumer, count, start_id]
        )
        if answer is None:
            raise LockLost(lock_key)
        return [(str(entry_id), _pairs(fields)) for entry_id, fields in answer]


class LeadershipLost(TaskFlowError):
    """Raised by ``promote`` when the caller's leader value is no longer current."""


class LockLost(TaskFlowError):
    """Raised by ``projector_read`` when the caller no longer holds the partition lock."""


def _pairs(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))
