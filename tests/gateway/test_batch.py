"""``POST /api/v1/tasks/batch``: many tasks in one request, all or none."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import uuid4

import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from taskflow.gateway.app import create_app
from taskflow.settings import Settings
from taskflow.streams.keyspace import Keyspace
from tests.gateway.test_tasks_api import auth
from tests.support.stack import running_worker
from tests.support.waiting import eventually

Client = AsyncTestClient  # type: ignore[type-arg]


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


async def test_a_batch_is_appended_in_order_and_runs(client: Client, redis: Redis, settings: Settings) -> None:
    tasks = [{"task_name": "echo", "kwargs": {"n": i}} for i in range(300)]
    tasks.append({"task_name": "echo", "scheduled_at": "2999-01-01T00:00:00Z"})
    response = await client.post("/api/v1/tasks/batch", json={"tasks": tasks}, headers=auth(settings))
    assert response.status_code == 201, response.text
    items = response.json()["items"]
    assert len(items) == 301 and len({item["task_id"] for item in items}) == 301
    assert {item["status"] for item in items[:300]} == {"PENDING"} and items[300]["status"] == "SCHEDULED"
    event_ids = [item["event_id"] for item in items]
    assert event_ids == sorted(event_ids, key=lambda i: tuple(map(int, i.split("-"))))  # request order
    async with running_worker(settings, redis, concurrency=20):
        marker = Keyspace.of(settings).task_marker

        async def all_done() -> bool:
            states = [await redis.hget(marker(item["task_id"]), "state") for item in items[:300]]
            return set(states) == {"succeeded"}

        await eventually(all_done, timeout_s=30)


@pytest.mark.parametrize(
    ("task", "field"),
    [
        ({"task_name": "sleep", "kwargs": {"seconds": "abc"}}, "tasks[2].kwargs.seconds"),
        ({"task_name": "nope"}, "tasks[2].task_name"),
        ({"task_name": "echo", "cron": "* * * * *"}, "tasks[2].cron"),
        ({"task_name": "echo", "depends_on": [str(uuid4())]}, "tasks[2].depends_on"),
    ],
)
async def test_one_refused_task_refuses_the_batch_naming_it(
    client: Client, redis: Redis, settings: Settings, task: dict[str, object], field: str
) -> None:
    tasks = [{"task_name": "echo"}, {"task_name": "echo"}, task]
    response = await client.post("/api/v1/tasks/batch", json={"tasks": tasks}, headers=auth(settings))
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(f"{field}:")
    assert response.json()["extra"][0]["key"] == field
    assert await redis.xlen(Keyspace.of(settings).events(0)) == 0


@pytest.mark.parametrize("count", [0, 1001])
async def test_a_batch_holds_1_to_1000_tasks(client: Client, settings: Settings, count: int) -> None:
    tasks = [{"task_name": "echo"}] * count
    response = await client.post("/api/v1/tasks/batch", json={"tasks": tasks}, headers=auth(settings))
    assert response.status_code == 422, response.text
    assert "tasks" in response.json()["detail"]


async def test_a_resent_batch_with_task_ids_answers_the_same_tasks(client: Client, settings: Settings) -> None:
    tasks = [{"task_name": "echo", "task_id": str(uuid4())} for _ in range(3)]
    first = await client.post("/api/v1/tasks/batch", json={"tasks": tasks}, headers=auth(settings))
    again = await client.post("/api/v1/tasks/batch", json={"tasks": tasks}, headers=auth(settings))
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    tasks[1] = {**tasks[1], "kwargs": {"other": True}}
    taken = await client.post("/api/v1/tasks/batch", json={"tasks": tasks}, headers=auth(settings))
    assert taken.status_code == 409 and tasks[1]["task_id"] in taken.json()["detail"]
