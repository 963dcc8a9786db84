"""/api/v1/stats: a user sees the counts of their own tasks only; queue depths and held
tasks, which are everyone's, are for admins."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from taskflow.gateway.app import create_app
from taskflow.settings import Settings
from tests.gateway.test_tasks_api import auth
from tests.support.stack import running_projector
from tests.support.waiting import eventually

Client = AsyncTestClient  # type: ignore[type-arg]


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


async def _submit(client: Client, settings: Settings, sub: str, n: int, **extra: object) -> None:
    for _ in range(n):
        body = {"task_name": "echo", **extra}
        assert (await client.post("/api/v1/tasks", json=body, headers=auth(settings, sub))).status_code == 201


async def test_a_user_sees_only_the_counts_of_their_own_tasks(
    client: Client, settings: Settings, redis: Redis, pool: asyncpg.Pool
) -> None:
    await _submit(client, settings, "alice", 2)
    await _submit(client, settings, "bob", 3)
    await _submit(client, settings, "bob", 1, scheduled_at="2099-01-01T00:00:00Z")
    async with running_projector(settings, redis, pool):
        await eventually(lambda: pool.fetchval("SELECT count(*) = 6 FROM tasks"))

    alice = await client.get("/api/v1/stats", headers=auth(settings, "alice"))
    assert alice.status_code == 200
    assert alice.json() == {"tasks_by_status": {"PENDING": 2}, "queues": None, "scheduled": None, "quarantined": None}
    bob = (await client.get("/api/v1/stats", headers=auth(settings, "bob"))).json()
    assert bob["tasks_by_status"] == {"PENDING": 3, "SCHEDULED": 1}
    carol = (await client.get("/api/v1/stats", headers=auth(settings, "carol"))).json()
    assert carol == {"tasks_by_status": {}, "queues": None, "scheduled": None, "quarantined": None}


async def test_an_admin_sees_every_task_and_the_queues(
    client: Client, settings: Settings, redis: Redis, pool: asyncpg.Pool
) -> None:
    await _submit(client, settings, "alice", 2)
    await _submit(client, settings, "bob", 3)
    async with running_projector(settings, redis, pool):
        await eventually(lambda: pool.fetchval("SELECT count(*) = 5 FROM tasks"))
    body = (await client.get("/api/v1/stats", headers=auth(settings, "ops", "admin"))).json()
    assert body["tasks_by_status"] == {"PENDING": 5}
    assert body["queues"]["medium"] == {"waiting": 5, "in_flight": 0} and body["scheduled"] == 0
