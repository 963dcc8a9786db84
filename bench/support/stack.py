"""TaskFlowStack: one namespace + one database cloned from the migrated template, for one
phase: spawning TaskFlow's processes, submitting, checking PostgreSQL afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from datetime import UTC, datetime

import asyncpg
from redis.asyncio import BlockingConnectionPool, Redis

from support.bench import Bench, unlink_matching, with_database
from support.errors import PhaseError
from support.processes import Proc, exe
from taskflow.events import TaskSubmitted
from taskflow.settings import load_settings
from taskflow.streams.groups import ensure_groups
from taskflow.streams.keyspace import Keyspace
from taskflow.streams.submit import Submitter

SUBMIT_IN_FLIGHT = 1000


class TaskFlowStack:
    """One namespace + one database cloned from the migrated template, for one phase."""

    def __init__(self, bench: Bench, label: str) -> None:
        self.bench = bench
        self.label = label
        self.ns = bench.new_name("tf")
        self.db = f"bench_{self.ns}"
        self.env = bench.taskflow_env(self.ns, self.db)
        self.settings = load_settings(self.env)
        self.procs: list[Proc] = []
        self.keyspace = Keyspace.of(self.settings)
        self.events_streams = [self.keyspace.events(p) for p in self.keyspace.all_partitions]
        self.dispatch_streams = [self.keyspace.dispatch(p, "medium") for p in self.keyspace.all_partitions]

    @property
    def redis(self) -> Redis:
        assert self.bench.redis is not None
        return self.bench.redis

    async def __aenter__(self) -> TaskFlowStack:
        self.bench.databases.append(self.db)
        await self.bench.admin(f'CREATE DATABASE "{self.db}" TEMPLATE "{self.bench.template}"')
        # The gateway does this at start-up; creating the groups before the first submit
        # makes them start at the first entry.
        await ensure_groups(self.redis, self.keyspace)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for proc in self.procs:
            proc.stop()
        with contextlib.suppress(Exception):
            await unlink_matching(self.redis, self.ns)
        with contextlib.suppress(Exception):
            await self.bench.admin(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')
            self.bench.databases.remove(self.db)

    def spawn(self, name: str, *args: str) -> Proc:
        proc = Proc(f"{self.label}-{name}", [exe("taskflow"), name, *args], self.env, self.bench.cfg.logdir)
        self.procs.append(proc)
        profiler = self.bench.profile(proc)
        if profiler is not None:
            self.procs.append(profiler)
        return proc

    def worker(self) -> Proc:
        return self.spawn("worker", "--concurrency", str(self.bench.cfg.concurrency))

    async def submit(self, n: int, task_name: str) -> float:
        """N ``task_name`` submits through the atomic submit script; the seconds it took."""
        events = [
            TaskSubmitted(
                aggregate_id=str(uuid.uuid4()),
                occurred_at=datetime.now(UTC),
                correlation_id=uuid.uuid4().hex,
                actor="bench",
                task_name=task_name,
            )
            for _ in range(n)
        ]
        return await self.submit_events(events)

    async def submit_events(self, events: list[TaskSubmitted]) -> float:
        """Submit through the atomic submit script the gateway uses (scheduled ones held
        until due), SUBMIT_IN_FLIGHT at a time; returns the seconds it took."""
        pool = BlockingConnectionPool.from_url(
            self.bench.cfg.redis_url, max_connections=self.bench.cfg.submit_connections, decode_responses=True
        )
        client = Redis(connection_pool=pool)
        submitter = Submitter(client, self.keyspace)
        ttl = self.settings.idempotency_ttl_seconds

        async def one(event: TaskSubmitted) -> None:
            outcome = await submitter.submit(event, fingerprint="bench", marker_ttl_seconds=ttl)
            if not outcome.created:
                raise PhaseError("a submit was not created")

        started = time.perf_counter()
        try:
            for i in range(0, len(events), SUBMIT_IN_FLIGHT):
                await asyncio.gather(*(one(e) for e in events[i : i + SUBMIT_IN_FLIGHT]))
        finally:
            await client.aclose()
            await pool.disconnect()
        return time.perf_counter() - started

    async def verify(self, n: int, events_expected: int) -> dict[str, int]:
        conn = await asyncpg.connect(with_database(self.bench.cfg.pg_admin_url, self.db), timeout=10)
        try:
            row = await conn.fetchrow(
                "SELECT count(*) FILTER (WHERE status = 'COMPLETED') AS completed, count(*) AS tasks FROM tasks"
            )
            assert row is not None
            archived = await conn.fetchval("SELECT count(*) FROM event_archive")
            results = await conn.fetchval("SELECT count(*) FROM task_results")
            executions = await conn.fetchval("SELECT count(*) FILTER (WHERE status = 'COMPLETED') FROM task_executions")
            checkpoints = {
                int(r["partition"]): f"{r['last_ms']}-{r['last_seq']}"
                for r in await conn.fetch("SELECT partition, last_ms, last_seq FROM projection_checkpoints")
            }
        finally:
            await conn.close()
        last = {p: (await self.redis.xinfo_stream(s))["last-generated-id"] for p, s in enumerate(self.events_streams)}
        found = {
            "tasks_completed": int(row["completed"]),
            "tasks": int(row["tasks"]),
            "event_archive": int(archived),
            "task_results": int(results),
            "executions_completed": int(executions),
        }
        expected = {
            "tasks_completed": n,
            "tasks": n,
            "event_archive": events_expected,
            "task_results": n,
            "executions_completed": n,
        }
        if found != expected:
            raise PhaseError(f"{self.label}: PostgreSQL holds {found}, expected {expected}")
        if checkpoints != last:
            raise PhaseError(f"{self.label}: checkpoints {checkpoints} are not the streams' last ids {last}")
        return found
