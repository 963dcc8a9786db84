"""Workers: live status from heartbeats, pause / resume, DEAD after silence and takeover."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import asyncpg
import msgspec
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from taskflow.events import TaskReclaimed, TaskStarted, TaskSucceeded, WorkerDied
from taskflow.gateway.app import create_app
from taskflow.settings import Settings
from tests.gateway.test_tasks_api import auth
from tests.support.processes import env_for, services, start
from tests.support.stack import (
    all_events,
    events_of,
    running_coordinator,
    running_projector,
    running_worker,
    submit,
    submitted,
)
from tests.support.waiting import eventually

Client = AsyncTestClient  # type: ignore[type-arg]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, heartbeat_seconds=0.3, worker_dead_after_seconds=2.0)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


async def _status(client: Client, settings: Settings, worker_id: str) -> str:
    response = await client.get(f"/api/v1/workers/{worker_id}", headers=auth(settings))
    return str(response.json()["status"]) if response.status_code == 200 else ""


async def test_workers_show_live_status_and_load(
    client: Client, settings: Settings, redis: Redis, pool: asyncpg.Pool
) -> None:
    async with running_projector(settings, redis, pool):
        async with running_worker(settings, redis, concurrency=1) as worker:
            await eventually(lambda: _is(client, settings, worker.id, "IDLE"))
            await submit(redis, settings, submitted("sleep", seconds=2))
            await eventually(lambda: _is(client, settings, worker.id, "BUSY"))
            listed = (await client.get("/api/v1/workers", headers=auth(settings))).json()["items"]
            (mine,) = [w for w in listed if w["worker_id"].replace("-", "") == worker.id]
            assert mine["capacity"] == 1 and mine["current_load"] == 1 and mine["last_heartbeat"]
        await eventually(lambda: _is(client, settings, worker.id, "STOPPED"))


async def _is(client: Client, settings: Settings, worker_id: str, status: str) -> bool:
    return await _status(client, settings, worker_id) == status


async def test_a_paused_worker_finishes_in_flight_work_and_takes_nothing_new(
    client: Client, settings: Settings, redis: Redis, pool: asyncpg.Pool
) -> None:
    running = submitted("sleep", seconds=1.0)
    await submit(redis, settings, running)
    async with running_projector(settings, redis, pool), running_worker(settings, redis) as worker:
        await eventually(lambda: _has(redis, settings, running.aggregate_id, TaskStarted))
        # Workers are read from the projection: wait until this one is in it.
        await eventually(lambda: pool.fetchval("SELECT count(*) FROM workers WHERE worker_id = $1::uuid", worker.id))
        assert (await client.post(f"/api/v1/workers/{worker.id}/pause", headers=auth(settings))).status_code == 403
        paused = await client.post(f"/api/v1/workers/{worker.id}/pause", headers=auth(settings, "ops", "admin"))
        assert paused.status_code == 202 and paused.json()["paused"] is True
        await eventually(lambda: _worker_paused(worker))
        waiting = submitted("echo")
        await submit(redis, settings, waiting)
        await eventually(lambda: _has(redis, settings, running.aggregate_id, TaskSucceeded))
        time.sleep(0)  # noqa: ASYNC251 - nothing to wait for: the point is what did NOT happen
        assert not await _has(redis, settings, waiting.aggregate_id, TaskStarted)
        await client.post(f"/api/v1/workers/{worker.id}/resume", headers=auth(settings, "ops", "admin"))
        await eventually(lambda: _has(redis, settings, waiting.aggregate_id, TaskSucceeded))


async def _worker_paused(worker: object) -> bool:
    return bool(worker.inflight.paused)  # type: ignore[attr-defined]


async def _has(redis: Redis, settings: Settings, task_id: str, kind: type) -> bool:
    return any(isinstance(e, kind) for e in await events_of(redis, settings, task_id))


async def test_a_silent_worker_is_declared_dead_and_its_work_taken_over_before_its_lease_ends(
    settings: Settings, redis: Redis, pool: asyncpg.Pool
) -> None:
    settings = msgspec.structs.replace(settings, lease_seconds=60.0)
    task = submitted("sleep", seconds=1.0)
    await submit(redis, settings, task)
    env = env_for(settings, TASKFLOW_HEARTBEAT_SECONDS="0.3", TASKFLOW_WORKER_DEAD_AFTER_SECONDS="2")
    with services() as processes:
        victim = start(processes, "worker", env=env)
        await eventually(lambda: _has(redis, settings, task.aggregate_id, TaskStarted), timeout_s=20)
        victim.kill()
        killed_at = time.monotonic()
        async with running_coordinator(settings, redis, pool), running_worker(settings, redis) as rescuer:
            await eventually(lambda: _has(redis, settings, task.aggregate_id, TaskSucceeded), timeout_s=20)
            took_s = time.monotonic() - killed_at
    died = [e for e in await all_events(redis, settings) if isinstance(e, WorkerDied)]
    assert len(died) == 1 and died[0].silent_s >= 2
    (reclaimed,) = [e for e in await events_of(redis, settings, task.aggregate_id) if isinstance(e, TaskReclaimed)]
    assert reclaimed.from_worker == died[0].aggregate_id and reclaimed.to_worker == rescuer.id
    assert took_s < 15  # far inside the 60 s lease: the hand-off, not the lease, freed it
