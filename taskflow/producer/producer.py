"""Submitting tasks from Python code that lives beside the workers: straight to Redis, no
HTTP hop, through the same checks and the same atomic append as the gateway
(``taskflow.submission``, ``Submitter``)."""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import Sequence
from types import TracebackType
from typing import Any, cast
from uuid import UUID

import asyncpg
from redis.asyncio import Redis

from taskflow.database import open_pool
from taskflow.producer.handle import TaskHandle
from taskflow.settings import Settings, load_settings
from taskflow.streams.cancel import Canceller
from taskflow.streams.connection import open_redis
from taskflow.streams.keyspace import Keyspace
from taskflow.streams.marker import ENDED_BADLY
from taskflow.streams.submit import SubmitOutcome, Submitter
from taskflow.submission.errors import InvalidSubmission
from taskflow.submission.intake import (
    Intake,
    build_batch,
    build_intake,
    now_utc,
    refusal_of,
    validate_task,
    waiting_for_parents,
)
from taskflow.submission.known_ids import refuse_if_projected_elsewhere
from taskflow.submission.schema import TaskSubmission
from taskflow.tasks import get_task, load_task_modules

# Who the events name as the submitter, unless the producer is given an actor: REST users
# see the tasks whose actor is their own ``sub``.
DEFAULT_ACTOR = "producer"


class Producer:
    """A connection to one TaskFlow deployment for submitting and following tasks.

    ``async with await Producer.connect() as producer: ...`` reads the settings from the
    environment (``TASKFLOW_REDIS_URL``, ``TASKFLOW_NAMESPACE``, ...), as the workers do.
    ``@task`` functions' ``submit`` use the current event loop's default producer
    (``Producer.default()``), made the same way on first use.
    """

    def __init__(self, settings: Settings, redis: Redis, *, actor: str = DEFAULT_ACTOR) -> None:
        self.settings = settings
        self.redis = redis
        self.actor = actor
        self.keyspace = Keyspace.of(settings)
        self._submitter = Submitter(redis, self.keyspace)
        # One connection kept for the common case, one submit at a time: redis-py's pool
        # costs ~30 us a command to hand out and take back a connection (a quarter of a
        # submit, docs/benchmarks.md Issue 12). Concurrent submits use the pool meanwhile.
        self._direct = redis.client()
        self._direct_submitter = Submitter(self._direct, self.keyspace)
        self._direct_busy = False
        self._canceller = Canceller(redis, self.keyspace)
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()

    @classmethod
    async def connect(cls, settings: Settings | None = None, *, actor: str = DEFAULT_ACTOR) -> Producer:
        """Connect with ``settings`` (default: read from the environment) and import the
        configured task modules, so tasks can be submitted by name too."""
        settings = settings or load_settings(os.environ)
        load_task_modules(settings.task_modules)
        return cls(settings, await open_redis(settings), actor=actor)

    @classmethod
    async def default(cls) -> Producer:
        """This event loop's producer, connected from the environment on first use."""
        loop = asyncio.get_running_loop()
        producer = _defaults.get(loop)
        if producer is None:
            producer = await cls.connect()
            _defaults[loop] = producer
        return producer

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.close()
        await self._direct.aclose()
        await self.redis.aclose()

    async def __aenter__(self) -> Producer:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def submit(self, submission: TaskSubmission, *, idempotency_key: str | None = None) -> TaskHandle[Any]:
        """Append one task. ``InvalidSubmission`` names the field it refuses (as the
        gateway's 422 does); an ``idempotency_key`` used before with the same submission
        returns the first task's handle, with another one raises ``IdempotencyConflict``."""
        validate_task(submission, idempotency_key)
        intake = build_intake(submission, self.actor, idempotency_key, None, now_utc())
        if submission.depends_on and not await self._parents_done(intake, submission.depends_on):
            intake = waiting_for_parents(intake)
        await refuse_if_projected_elsewhere(self.redis, self.keyspace, self._database, [intake])
        outcome = await self._append(intake)
        if (refusal := refusal_of(intake, outcome)) is not None:
            raise refusal
        return self.handle(intake.task_id, submission.task_name)

    async def submit_many(self, submissions: Sequence[TaskSubmission]) -> list[TaskHandle[Any]]:
        """Append many tasks in one round trip, in order. Every one is checked first: one
        invalid submission raises ``InvalidSubmission`` naming its index and field, and
        nothing is appended. Dependencies and cron schedules go through ``submit``."""
        intakes = build_batch(submissions, self.actor, None, now_utc())
        await refuse_if_projected_elsewhere(self.redis, self.keyspace, self._database, intakes)
        outcomes = await self._submitter.submit_many(
            [(intake.event, intake.fingerprint) for intake in intakes],
            marker_ttl_seconds=self.settings.idempotency_ttl_seconds,
        )
        for intake, outcome in zip(intakes, outcomes, strict=True):
            if (refusal := refusal_of(intake, outcome)) is not None:
                raise refusal
        return [self.handle(intake.task_id, s.task_name) for intake, s in zip(intakes, submissions, strict=True)]

    async def _append(self, intake: Intake) -> SubmitOutcome:
        ttl = self.settings.idempotency_ttl_seconds
        if self._direct_busy:
            return await self._submitter.submit(intake.event, fingerprint=intake.fingerprint, marker_ttl_seconds=ttl)
        self._direct_busy = True
        try:
            return await self._direct_submitter.submit(
                intake.event, fingerprint=intake.fingerprint, marker_ttl_seconds=ttl
            )
        finally:
            self._direct_busy = False

    def handle(self, task_id: UUID | str, task_name: str | None = None) -> TaskHandle[Any]:
        """A handle on a task by id; with ``task_name`` its result is converted to the
        function's return annotation."""
        returns: Any = Any
        if task_name is not None:
            returns = get_task(task_name).returns
        return TaskHandle(
            self.redis, self.keyspace, self._canceller, str(task_id), returns, self.actor, archive=self._database
        )

    async def _parents_done(self, intake: Intake, parents: list[UUID]) -> bool:
        """Refuse parents Redis does not know or that can never complete; True when all
        have completed. (Ids are fresh or derived from a new key, so no cycle can close:
        a parent was accepted before this task existed.)"""
        if intake.task_id in parents:
            raise InvalidSubmission("depends_on", f"task {intake.task_id} cannot depend on itself (a cycle)")
        async with self.redis.pipeline(transaction=False) as pipe:
            for parent in parents:
                pipe.hget(self.keyspace.task_marker(str(parent)), "state")
            states = cast("list[str | None]", await pipe.execute())
        for parent, state in zip(parents, states, strict=True):
            if state is None:
                raise InvalidSubmission("depends_on", f"unknown task {parent}")
            if state in ENDED_BADLY:
                raise InvalidSubmission(
                    "depends_on", f"task {parent} has already ended as {state}; it can never complete"
                )
        return all(state == "succeeded" for state in states)

    async def _database(self) -> asyncpg.Pool:
        async with self._pool_lock:
            if self._pool is None:
                self._pool = await open_pool(self.settings, min_size=0, max_size=2)
            return self._pool


_defaults: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Producer] = weakref.WeakKeyDictionary()
