"""Operator actions over REST carry actor and reason into the audit trail, appended in the
same step as the action (only actions that took effect), and ``GET /api/v1/audit``
(admin only) lists them, filtered and paged."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from taskflow.events import OperatorActed, TaskCancelled
from taskflow.gateway.app import create_app
from taskflow.settings import Settings
from tests.gateway.test_tasks_api import auth
from tests.support.stack import all_events, running_projector, running_worker
from tests.support.waiting import eventually

Client = AsyncTestClient  # type: ignore[type-arg]


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


async def _submit(client: Client, settings: Settings, sub: str = "alice", **body: object) -> str:
    response = await client.post("/api/v1/tasks", json=body, headers=auth(settings, sub))
    assert response.status_code == 201, response.text
    return str(response.json()["task_id"])


async def _audit(pool: asyncpg.Pool, n: int) -> bool:
    return int(await pool.fetchval("SELECT count(*) FROM audit_log")) >= n


async def test_actions_over_rest_land_in_the_audit_trail_with_actor_and_reason(
    client: Client, settings: Settings, redis: Redis, pool: asyncpg.Pool
) -> None:
    admin = auth(settings, "root", "admin")
    async with running_projector(settings, redis, pool):
        cancelled = await _submit(client, settings, task_name="echo")
        answer = await client.delete(
            f"/api/v1/tasks/{cancelled}", params={"reason": "wrong input"}, headers=auth(settings, "alice")
        )
        assert answer.status_code == 200
        # A cancel that does not take effect (already ended) leaves no audit record.
        assert (await client.delete(f"/api/v1/tasks/{cancelled}", headers=auth(settings))).status_code == 409
        retried = await client.post(
            f"/api/v1/tasks/{cancelled}/retry", params={"reason": "input fixed"}, headers=auth(settings)
        )
        assert retried.status_code == 202, retried.text
        async with running_worker(settings, redis) as worker:
            worker_id = worker.id

            async def listed() -> bool:
                found = await client.get(f"/api/v1/workers/{worker_id}", headers=admin)
                return found.status_code == 200

            await eventually(listed)
            paused = await client.post(f"/api/v1/workers/{worker_id}/pause", params={"reason": "deploy"}, headers=admin)
            assert paused.status_code == 202
        await eventually(lambda: _audit(pool, 3), timeout_s=15)
        # In the log, each audit record right after the event of its action.
        events = await all_events(redis, settings)
        for i, event in enumerate(events):
            if isinstance(event, OperatorActed) and event.action == "cancel":
                assert isinstance(events[i - 1], TaskCancelled) and events[i - 1].aggregate_id == cancelled
        page = await client.get("/api/v1/audit", headers=admin)
        assert page.status_code == 200, page.text
        items = page.json()["items"]
        assert [(i["action"], i["actor"], i["reason"], i["target_kind"]) for i in items] == [
            ("pause", "root", "deploy", "worker"),
            ("retry", "alice", "input fixed", "task"),
            ("cancel", "alice", "wrong input", "task"),
        ]
        assert all(i["via"] == "rest" and i["request_id"] for i in items)
        assert items[2]["target"] == cancelled
        only = await client.get("/api/v1/audit", params={"action": "cancel"}, headers=admin)
        assert [i["action"] for i in only.json()["items"]] == ["cancel"]
        of_task = await client.get("/api/v1/audit", params={"target": cancelled}, headers=admin)
        assert {i["action"] for i in of_task.json()["items"]} == {"cancel", "retry"}
        first = await client.get("/api/v1/audit", params={"limit": 2}, headers=admin)
        assert len(first.json()["items"]) == 2 and first.json()["next_cursor"]
        rest = await client.get(
            "/api/v1/audit", params={"limit": 2, "cursor": first.json()["next_cursor"]}, headers=admin
        )
        assert [i["action"] for i in rest.json()["items"]] == ["cancel"] and rest.json()["next_cursor"] is None


async def test_the_audit_trail_is_for_admins_and_checks_its_filters(client: Client, settings: Settings) -> None:
    assert (await client.get("/api/v1/audit", headers=auth(settings, "alice"))).status_code == 403
    assert (await client.get("/api/v1/audit", headers=auth(settings, "olga", "ops"))).status_code == 403
    bad = await client.get("/api/v1/audit", params={"action": "explode"}, headers=auth(settings, "root", "admin"))
    assert bad.status_code == 422 and "action" in bad.json()["detail"]
    long = await client.delete(
        "/api/v1/tasks/0b6f6c1e-8c1d-4a4e-9f57-1d2f3a4b5c6d", params={"reason": "x" * 501}, headers=auth(settings)
    )
    assert long.status_code == 422
