"""The dead-letter queue over REST: listing, requeue of one and of many, retention."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from taskflow.events import TaskStarted
from taskflow.gateway.app import create_app
from taskflow.projections.store import purge_dead_letters
from taskflow.settings import Settings
from tests.gateway.test_tasks_api import auth
from tests.support.stack import events_of, running_projector, running_worker
from tests.support.waiting import eventually

Client = AsyncTestClient  # type: ignore[type-arg]


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


async def _dead(client: Client, settings: Settings, pool: asyncpg.Pool, redis: Redis, n: int) -> list[str]:
    ids = []
    for i in range(n):
        body = {"task_name": "fail", "kwargs": {"message": f"m{i}"}, "max_retries": 0}
        ids.append((await client.post("/api/v1/tasks", json=body, headers=auth(settings))).json()["task_id"])
    await client.post("/api/v1/tasks", json={"task_name": "echo"}, headers=auth(settings))

    async def all_dead() -> bool:
        return int(await pool.fetchval("SELECT count(*) FROM dead_letter_queue")) == n

    async with running_projector(settings, redis, pool), running_worker(settings, redis):
        await eventually(all_dead, timeout_s=20)
    return ids


async def test_final_failures_are_listed_with_reason_trace_and_task_data(
    client: Client, settings: Settings, pool: asyncpg.Pool, redis: Redis
) -> None:
    ids = await _dead(client, settings, pool, redis, 5)
    page = (await client.get("/api/v1/dlq", params={"limit": 3}, headers=auth(settings))).json()
    assert len(page["items"]) == 3 and page["next_cursor"]
    rest = (await client.get("/api/v1/dlq", params={"cursor": page["next_cursor"]}, headers=auth(settings))).json()
    listed = [e["task_id"] for e in page["items"] + rest["items"]]
    assert sorted(listed) == sorted(ids)
    entry = page["items"][0]
    assert entry["failure_reason"].startswith("TaskFailedOnPurpose: m")
    assert "Traceback" in entry["stack_trace"] and entry["total_attempts"] == 1
    assert entry["task_data"]["task_name"] == "fail" and entry["task_data"]["status"] == "FAILED"
    others = (await client.get("/api/v1/dlq", headers=auth(settings, "bob"))).json()
    assert others["items"] == []


async def test_requeue_one_from_the_dlq_runs_it_again_and_marks_the_entry(
    client: Client, settings: Settings, pool: asyncpg.Pool, redis: Redis
) -> None:
    (task_id,) = await _dead(client, settings, pool, redis, 1)
    response = await client.post(f"/api/v1/dlq/{task_id}/requeue", headers=auth(settings))
    assert response.status_code == 202
    async with running_projector(settings, redis, pool), running_worker(settings, redis):
        await eventually(lambda: _started_twice(redis, settings, task_id))
        await eventually(
            lambda: pool.fetchval(
                "SELECT requeued_at IS NOT NULL FROM dead_letter_queue WHERE task_id = $1::uuid ORDER BY moved_at LIMIT 1",
                task_id,
            )
        )
    requeued = (await client.get("/api/v1/dlq", params={"requeued": "true"}, headers=auth(settings))).json()
    assert [e["task_id"] for e in requeued["items"]] == [task_id]
    missing = await client.post("/api/v1/dlq/00000000-0000-4000-8000-000000000000/requeue", headers=auth(settings))
    assert missing.status_code == 404


async def _started_twice(redis: Redis, settings: Settings, task_id: str) -> bool:
    return sum(isinstance(e, TaskStarted) for e in await events_of(redis, settings, task_id)) >= 2


async def test_bulk_requeue_by_filter(client: Client, settings: Settings, pool: asyncpg.Pool, redis: Redis) -> None:
    ids = await _dead(client, settings, pool, redis, 4)
    response = await client.post("/api/v1/dlq/requeue", json={"task_name": "fail", "limit": 3}, headers=auth(settings))
    assert response.status_code == 202
    body = response.json()
    assert len(body["requeued"]) == 3 and body["skipped"] == [] and {r["task_id"] for r in body["requeued"]} <= set(ids)
    bad = await client.post("/api/v1/dlq/requeue", json={"limit": 5000}, headers=auth(settings))
    assert bad.status_code == 422 and "limit" in bad.json()["detail"]


async def test_entries_past_retention_are_purged(
    client: Client, settings: Settings, pool: asyncpg.Pool, redis: Redis
) -> None:
    await _dead(client, settings, pool, redis, 2)
    await pool.execute(
        "UPDATE dead_letter_queue SET moved_at = now() - interval '31 days' WHERE ctid IN (SELECT ctid FROM dead_letter_queue LIMIT 1)"
    )
    assert await purge_dead_letters(pool, timedelta(days=30)) == 1
    assert await pool.fetchval("SELECT count(*) FROM dead_letter_queue") == 1
