"""The REST gateway against real Redis and PostgreSQL (no projector unless stated)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import UUID, uuid4

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from taskflow.gateway.app import create_app
from taskflow.gateway.auth import issue_token
from taskflow.settings import Settings
from taskflow.streams.keyspace import WORKERS_GROUP, Keyspace
from tests.support.stack import running_projector, running_worker
from tests.support.waiting import eventually

Client = AsyncTestClient  # type: ignore[type-arg]


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


def auth(settings: Settings, sub: str = "alice", role: str = "user") -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(settings.jwt_secret, sub, role)}"}  # type: ignore[arg-type]


async def test_api_routes_need_a_valid_token(client: Client, settings: Settings) -> None:
    assert (await client.get("/api/v1/tasks")).status_code == 401
    bad = {"Authorization": f"Bearer {issue_token('another-secret-' + 'y' * 32, 'mallory')}"}
    response = await client.get("/api/v1/tasks", headers=bad)
    assert response.status_code == 401 and response.json()["detail"] == "invalid token"
    expired = {"Authorization": f"Bearer {issue_token(settings.jwt_secret, 'alice', ttl_seconds=-10)}"}
    assert (await client.get("/api/v1/tasks", headers=expired)).status_code == 401


async def test_health_and_ready_need_no_token(client: Client) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = await client.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "redis": "ok", "postgres": "ok", "migrations": "ok"}


async def test_ready_is_503_when_migrations_are_missing(settings: Settings, pool: asyncpg.Pool) -> None:
    await pool.execute("DELETE FROM alembic_version")
    async with AsyncTestClient(app=create_app(settings)) as c:
        response = await c.get("/ready")
    assert response.status_code == 503
    assert "taskflow migrate" in response.json()["migrations"]


async def test_submit_returns_201_with_location_and_event_id(client: Client, settings: Settings, redis: Redis) -> None:
    response = await client.post(
        "/api/v1/tasks", json={"task_name": "echo", "kwargs": {"a": 1}}, headers=auth(settings)
    )
    assert response.status_code == 201
    body = response.json()
    assert response.headers["location"] == f"/api/v1/tasks/{body['task_id']}"
    assert body["status"] == "PENDING"
    ((event_id, _),) = await redis.xrange(Keyspace.of(settings).events(0))
    assert body["event_id"] == event_id


async def test_a_read_right_after_the_submit_never_answers_404(client: Client, settings: Settings) -> None:
    """Invariant 9: no projector runs here at all, yet the task is readable at once."""
    headers = auth(settings)
    for _ in range(20):
        created = (await client.post("/api/v1/tasks", json={"task_name": "echo"}, headers=headers)).json()
        response = await client.get(f"/api/v1/tasks/{created['task_id']}", headers=headers)
        assert response.status_code == 200
        assert response.json()["status"] == "PENDING" and response.json()["last_event_id"] == created["event_id"]
        history = (await client.get(f"/api/v1/tasks/{created['task_id']}/events", headers=headers)).json()
        assert [e["type"] for e in history] == ["task.submitted"]


async def test_a_retried_submit_with_the_same_idempotency_key_returns_the_first_task(
    client: Client, settings: Settings, redis: Redis
) -> None:
    headers = {**auth(settings), "Idempotency-Key": "order-42"}
    first = await client.post("/api/v1/tasks", json={"task_name": "echo"}, headers=headers)
    second = await client.post("/api/v1/tasks", json={"task_name": "echo"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert await redis.xlen(Keyspace.of(settings).events(0)) == 1
    assert await redis.xlen(Keyspace.of(settings).dispatch(0, "medium")) == 1


async def test_the_same_idempotency_key_from_another_user_is_another_task(client: Client, settings: Settings) -> None:
    a = await client.post(
        "/api/v1/tasks",
        json={"task_name": "echo"},
        headers={**auth(settings, "a"), "Idempotency-Key": "k"},
    )
    b = await client.post(
        "/api/v1/tasks",
        json={"task_name": "echo"},
        headers={**auth(settings, "b"), "Idempotency-Key": "k"},
    )
    assert a.json()["task_id"] != b.json()["task_id"]


async def test_reusing_an_idempotency_key_with_another_body_is_a_422(client: Client, settings: Settings) -> None:
    headers = {**auth(settings), "Idempotency-Key": "k-1"}
    await client.post("/api/v1/tasks", json={"task_name": "echo"}, headers=headers)
    response = await client.post("/api/v1/tasks", json={"task_name": "echo", "kwargs": {"x": 1}}, headers=headers)
    assert response.status_code == 422
    assert response.json()["extra"][0]["key"] == "Idempotency-Key"


async def test_a_client_chosen_task_id_is_idempotent_and_cannot_be_reused_for_another_task(
    client: Client, settings: Settings
) -> None:
    task_id = str(uuid4())
    body = {"task_name": "echo", "task_id": task_id}
    first = await client.post("/api/v1/tasks", json=body, headers=auth(settings))
    again = await client.post("/api/v1/tasks", json=body, headers=auth(settings))
    other = await client.post("/api/v1/tasks", json={**body, "kwargs": {"x": 1}}, headers=auth(settings))
    assert first.json()["task_id"] == again.json()["task_id"] == task_id
    assert other.status_code == 409


async def test_a_projected_task_id_stays_taken_after_the_marker_expires(
    client: Client, settings: Settings, redis: Redis, pool: asyncpg.Pool
) -> None:
    task_id = str(uuid4())
    await client.post("/api/v1/tasks", json={"task_name": "echo", "task_id": task_id}, headers=auth(settings))
    async with running_projector(settings, redis, pool):
        await eventually(lambda: pool.fetchval("SELECT count(*) FROM tasks"))
    await redis.delete(Keyspace.of(settings).task_marker(task_id))
    response = await client.post(
        "/api/v1/tasks", json={"task_name": "echo", "task_id": task_id}, headers=auth(settings)
    )
    assert response.status_code == 409


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"task_name": "no_such_task"}, "task_name"),
        ({"task_name": "echo", "priority": "urgent"}, "priority"),
        ({"task_name": "echo", "priority": 11}, "priority"),
        ({"task_name": "echo", "max_retries": "five"}, "max_retries"),
        ({"task_name": "echo", "timeout_seconds": 0}, "timeout_seconds"),
        ({"task_name": "echo", "args": {"not": "a list"}}, "args"),
        ({"task_name": "sleep", "kwargs": {"secs": 1}}, "kwargs"),
        ({"task_name": "echo", "task_id": "not-a-uuid"}, "task_id"),
        ({"task_name": "echo", "priorty": "high"}, "priorty"),
        ({"kwargs": {}}, "task_name"),
    ],
)
async def test_bad_bodies_are_422_naming_the_field(
    client: Client, settings: Settings, body: dict[str, object], field: str
) -> None:
    response = await client.post("/api/v1/tasks", json=body, headers=auth(settings))
    assert response.status_code == 422, response.text
    payload = response.json()
    assert payload["status_code"] == 422
    assert field in payload["detail"]


async def test_malformed_json_is_a_422(client: Client, settings: Settings) -> None:
    response = await client.post(
        "/api/v1/tasks",
        content=b"{nope",
        headers={**auth(settings), "content-type": "application/json"},
    )
    assert response.status_code == 422


async def test_priority_accepts_the_seed_integers(client: Client, settings: Settings) -> None:
    created = (
        await client.post("/api/v1/tasks", json={"task_name": "echo", "priority": 9}, headers=auth(settings))
    ).json()
    task = (await client.get(f"/api/v1/tasks/{created['task_id']}", headers=auth(settings))).json()
    assert task["priority"] == "critical"


async def test_someone_elses_task_is_not_found_but_admins_see_it(client: Client, settings: Settings) -> None:
    created = (await client.post("/api/v1/tasks", json={"task_name": "echo"}, headers=auth(settings, "alice"))).json()
    path = f"/api/v1/tasks/{created['task_id']}"
    assert (await client.get(path, headers=auth(settings, "bob"))).status_code == 404
    assert (await client.get(path + "/events", headers=auth(settings, "bob"))).status_code == 404
    assert (await client.get(path, headers=auth(settings, "root", "admin"))).status_code == 200
    assert (await client.get(f"/api/v1/tasks/{uuid4()}", headers=auth(settings))).status_code == 404


async def test_full_lifecycle_is_visible_with_result_and_history(
    client: Client, settings: Settings, redis: Redis, pool: asyncpg.Pool
) -> None:
    headers = auth(settings)
    ok = (await client.post("/api/v1/tasks", json={"task_name": "echo", "kwargs": {"v": 7}}, headers=headers)).json()
    bad = (
        await client.post(
            "/api/v1/tasks",
            json={"task_name": "fail", "kwargs": {"message": "nope"}, "max_retries": 0},
            headers=headers,
        )
    ).json()

    async def finished() -> bool:
        rows = await pool.fetch("SELECT status FROM tasks WHERE status IN ('COMPLETED', 'FAILED')")
        return len(rows) == 2

    async with running_projector(settings, redis, pool), running_worker(settings, redis):
        await eventually(finished)
    done = (await client.get(f"/api/v1/tasks/{ok['task_id']}", headers=headers)).json()
    assert done["status"] == "COMPLETED" and done["result"] == {"v": 7} and done["error"] is None
    assert done["started_at"] and done["completed_at"] and done["attempts"] == 1
    failed = (await client.get(f"/api/v1/tasks/{bad['task_id']}", headers=headers)).json()
    assert failed["status"] == "FAILED"
    assert failed["error"]["type"] == "TaskFailedOnPurpose" and failed["error"]["message"] == "nope"
    assert "Traceback" in failed["error"]["traceback"]
    history = (await client.get(f"/api/v1/tasks/{ok['task_id']}/events", headers=headers)).json()
    assert [e["type"] for e in history] == ["task.submitted", "task.started", "task.succeeded"]
    assert history[0]["event_id"] == ok["event_id"]


async def test_list_filters_and_paginates_with_a_cursor(
    client: Client, settings: Settings, redis: Redis, pool: asyncpg.Pool
) -> None:
    headers = auth(settings)
    for i in range(7):
        await client.post(
            "/api/v1/tasks",
            json={
                "task_name": "echo" if i % 2 else "sleep",
                "kwargs": {} if i % 2 else {"seconds": 0},
            },
            headers=headers,
        )
    await client.post("/api/v1/tasks", json={"task_name": "echo"}, headers=auth(settings, "bob"))
    async with running_projector(settings, redis, pool):
        await eventually(lambda: _count_is(pool, 8))
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/tasks", params=params, headers=headers)).json()
        seen += [t["task_id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 7  # bob's task is not alice's to see
    echo = (await client.get("/api/v1/tasks", params={"task_name": "echo"}, headers=headers)).json()
    assert len(echo["items"]) == 3 and {t["task_name"] for t in echo["items"]} == {"echo"}
    pending = (await client.get("/api/v1/tasks", params={"status": "PENDING"}, headers=headers)).json()
    assert len(pending["items"]) == 7
    everyone = (
        await client.get("/api/v1/tasks", params={"limit": 100}, headers=auth(settings, "root", "admin"))
    ).json()
    assert len(everyone["items"]) == 8


async def _count_is(pool: asyncpg.Pool, n: int) -> bool:
    return int(await pool.fetchval("SELECT count(*) FROM tasks")) == n


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "DONE"}, "status"),
        ({"limit": 0}, "limit"),
        ({"cursor": "!!"}, "cursor"),
        ({"campaign_id": "x"}, "campaign_id"),
    ],
)
async def test_bad_list_queries_are_422_naming_the_parameter(
    client: Client, settings: Settings, params: dict[str, object], field: str
) -> None:
    response = await client.get("/api/v1/tasks", params=params, headers=auth(settings))
    assert response.status_code == 422 and field in response.json()["detail"]


async def test_task_ids_in_paths_must_be_uuids(client: Client, settings: Settings) -> None:
    response = await client.get("/api/v1/tasks/not-a-uuid", headers=auth(settings))
    assert response.status_code in (404, 422)
    assert UUID(int=0)  # keeps the import honest


async def test_a_future_scheduled_at_is_held_as_scheduled(client: Client, settings: Settings, redis: Redis) -> None:
    due = "2099-01-01T00:00:00+00:00"
    created = await client.post(
        "/api/v1/tasks", json={"task_name": "echo", "scheduled_at": due}, headers=auth(settings)
    )
    assert created.status_code == 201 and created.json()["status"] == "SCHEDULED"
    task = (await client.get(f"/api/v1/tasks/{created.json()['task_id']}", headers=auth(settings))).json()
    assert task["status"] == "SCHEDULED" and task["scheduled_at"].startswith("2099-01-01")
    assert await redis.xlen(Keyspace.of(settings).dispatch(0, "medium")) == 0
    assert await redis.zcard(Keyspace.of(settings).held_due(0)) == 1


async def test_scheduled_at_needs_a_timezone(client: Client, settings: Settings) -> None:
    body = {"task_name": "echo", "scheduled_at": "2099-01-01T00:00:00"}
    response = await client.post("/api/v1/tasks", json=body, headers=auth(settings))
    assert response.status_code == 422 and "scheduled_at" in response.json()["detail"]


async def test_stats_show_queue_depth_per_priority(client: Client, settings: Settings, redis: Redis) -> None:
    for priority, n in (("critical", 2), ("low", 3)):
        for _ in range(n):
            await client.post("/api/v1/tasks", json={"task_name": "echo", "priority": priority}, headers=auth(settings))
    await client.post(
        "/api/v1/tasks", json={"task_name": "echo", "scheduled_at": "2099-01-01T00:00:00Z"}, headers=auth(settings)
    )
    await redis.xreadgroup(WORKERS_GROUP, "w", {Keyspace.of(settings).dispatch(0, "low"): ">"}, count=1)
    body = (await client.get("/api/v1/stats", headers=auth(settings, "ops", "admin"))).json()
    assert body["queues"]["critical"] == {"waiting": 2, "in_flight": 0}
    assert body["queues"]["low"] == {"waiting": 2, "in_flight": 1}
    assert body["queues"]["high"] == {"waiting": 0, "in_flight": 0}
    assert body["scheduled"] == 1


@pytest.mark.parametrize("task_name", ["chatty_async", "chatty_sync"])
async def test_task_code_logs_and_progress_show_on_the_task(
    client: Client, settings: Settings, redis: Redis, pool: asyncpg.Pool, task_name: str
) -> None:
    created = (
        await client.post(
            "/api/v1/tasks", json={"task_name": task_name, "kwargs": {"steps": 4}}, headers=auth(settings)
        )
    ).json()
    task_id = created["task_id"]

    async def done() -> bool:
        return bool(await pool.fetchval("SELECT status = 'COMPLETED' FROM tasks WHERE task_id = $1::uuid", task_id))

    async with running_projector(settings, redis, pool), running_worker(settings, redis):
        await eventually(done)
        await eventually(lambda: pool.fetchval("SELECT count(*) = 4 FROM task_logs WHERE task_id = $1::uuid", task_id))
    task = (await client.get(f"/api/v1/tasks/{task_id}", headers=auth(settings))).json()
    assert task["progress"] == {"percent": 100.0, "message": "4/4"}
    logs = (await client.get(f"/api/v1/tasks/{task_id}/logs", headers=auth(settings))).json()
    assert [line["message"] for line in logs["items"]] == ["step 0", "step 1", "step 2", "step 3"]
    assert logs["items"][0]["metadata"]["data"] == {"step": 0}
    types = [e["type"] for e in (await client.get(f"/api/v1/tasks/{task_id}/events", headers=auth(settings))).json()]
    assert types.count("task.logged") == 4 and types.count("task.progressed") == 4
