"""Cancel and retry through the REST API, against real workers and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from taskflow.events import OperatorActed, TaskCancelled, TaskStarted, TaskSucceeded
from taskflow.gateway.app import create_app
from taskflow.settings import Settings
from taskflow.streams.keyspace import WORKERS_GROUP, Keyspace
from tests.gateway.test_tasks_api import auth
from tests.support.stack import events_of, running_projector, running_worker
from tests.support.waiting import eventually

Client = AsyncTestClient  # type: ignore[type-arg]


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


async def _submit(client: Client, settings: Settings, **body: object) -> str:
    response = await client.post("/api/v1/tasks", json=body, headers=auth(settings))
    assert response.status_code == 201, response.text
    return str(response.json()["task_id"])


async def test_a_pending_task_cancelled_never_runs(client: Client, settings: Settings, redis: Redis) -> None:
    task_id = await _submit(client, settings, task_name="echo")
    response = await client.delete(f"/api/v1/tasks/{task_id}", headers=auth(settings))
    assert response.status_code == 200 and response.json()["status"] == "CANCELLED"
    async with running_worker(settings, redis):
        await eventually(lambda: _dispatch_drained(redis, settings))
    history = await events_of(redis, settings, task_id)
    assert [type(e) for e in history if not isinstance(e, OperatorActed)][-1] is TaskCancelled
    assert isinstance(history[-1], OperatorActed) and history[-1].action == "cancel"
    assert not any(isinstance(e, TaskStarted) for e in history)
    again = await client.delete(f"/api/v1/tasks/{task_id}", headers=auth(settings))
    assert again.status_code == 409


async def _dispatch_drained(redis: Redis, settings: Settings) -> bool:
    stream = Keyspace.of(settings).dispatch(0, "medium")
    return bool(await redis.xlen(stream) == 0 and (await redis.xpending(stream, WORKERS_GROUP))["pending"] == 0)


async def test_a_scheduled_task_cancelled_leaves_the_schedule(client: Client, settings: Settings, redis: Redis) -> None:
    task_id = await _submit(client, settings, task_name="echo", scheduled_at="2099-01-01T00:00:00Z")
    response = await client.delete(f"/api/v1/tasks/{task_id}", headers=auth(settings))
    assert response.json()["status"] == "CANCELLED"
    assert await redis.zcard(Keyspace.of(settings).held_due(0)) == 0


@pytest.mark.parametrize(("task_name", "children_while_running"), [("sleep", 0), ("blocking_sleep", 1)])
async def test_a_running_task_is_stopped_and_nothing_of_it_runs_on(
    client: Client, settings: Settings, redis: Redis, task_name: str, children_while_running: int
) -> None:
    """The stop itself, not its speed: the 2 s target is measured in bench/lifecycle.py
    (docs/benchmarks.md, cancel latency), never with a wall clock in a test."""
    task_id = await _submit(client, settings, task_name=task_name, kwargs={"seconds": 60})
    async with running_worker(settings, redis) as worker:
        await eventually(lambda: _has(redis, settings, task_id, TaskStarted))
        # An async task runs on the worker's loop; a sync one in a child process (forked
        # right after its start is recorded).
        await eventually(lambda: asyncio.sleep(0, worker.children.live_processes() == children_while_running))
        response = await client.delete(f"/api/v1/tasks/{task_id}", headers=auth(settings))
        assert response.status_code == 202 and response.json()["status"] == "CANCELLING"
        await eventually(lambda: _has(redis, settings, task_id, TaskCancelled))
        # Stopped for real: nothing of it is running, on the loop or in a child.
        await eventually(lambda: _nothing_running(worker))
        assert worker.children.live_processes() == 0
    assert not await _has(redis, settings, task_id, TaskSucceeded)


async def _nothing_running(worker: object) -> bool:
    return not worker.inflight.running  # type: ignore[attr-defined]


async def _has(redis: Redis, settings: Settings, task_id: str, kind: type) -> bool:
    return any(isinstance(e, kind) for e in await events_of(redis, settings, task_id))


async def test_retry_runs_a_failed_task_again_and_refuses_other_states(
    client: Client, settings: Settings, redis: Redis, pool: asyncpg.Pool
) -> None:
    failed = await _submit(client, settings, task_name="fail", max_retries=0)
    done = await _submit(client, settings, task_name="echo")

    async def projected(task_id: str, status: str) -> bool:
        return bool(await pool.fetchval("SELECT status = $2 FROM tasks WHERE task_id = $1::uuid", task_id, status))

    async with running_projector(settings, redis, pool), running_worker(settings, redis):
        await eventually(lambda: projected(failed, "FAILED"))
        await eventually(lambda: projected(done, "COMPLETED"))
        response = await client.post(f"/api/v1/tasks/{failed}/retry", headers=auth(settings))
        assert response.status_code == 202 and response.json()["status"] == "PENDING"
        await eventually(lambda: _starts(redis, settings, failed, 2))
        assert (await client.post(f"/api/v1/tasks/{done}/retry", headers=auth(settings))).status_code == 409
        assert (await client.delete(f"/api/v1/tasks/{done}", headers=auth(settings))).status_code == 409
    assert (await client.post(f"/api/v1/tasks/{failed}/retry", headers=auth(settings, "mallory"))).status_code == 404


async def _starts(redis: Redis, settings: Settings, task_id: str, n: int) -> bool:
    return sum(isinstance(e, TaskStarted) for e in await events_of(redis, settings, task_id)) >= n
