"""depends_on: a child runs only after every parent COMPLETED; bad graphs are 422s; a
parent that fails for good cancels its waiting children."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import uuid4

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from taskflow.events import TaskCancelled, TaskStarted, TaskSucceeded
from taskflow.gateway.app import create_app
from taskflow.settings import Settings
from tests.gateway.test_tasks_api import auth
from tests.support.stack import all_events, events_of, running_coordinator, running_worker
from tests.support.waiting import eventually

Client = AsyncTestClient  # type: ignore[type-arg]


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


async def _post(client: Client, settings: Settings, **body: object) -> dict[str, str]:
    response = await client.post("/api/v1/tasks", json=body, headers=auth(settings))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_a_child_runs_only_after_every_parent_completed(
    client: Client, settings: Settings, redis: Redis, pool: asyncpg.Pool
) -> None:
    slow = await _post(client, settings, task_name="sleep", kwargs={"seconds": 1.0})
    fast = await _post(client, settings, task_name="echo")
    child = await _post(client, settings, task_name="echo", depends_on=[slow["task_id"], fast["task_id"]])
    assert child["status"] == "WAITING"
    assert (await client.get(f"/api/v1/tasks/{child['task_id']}", headers=auth(settings))).json()["status"] == "WAITING"
    async with running_coordinator(settings, redis, pool), running_worker(settings, redis):
        await eventually(lambda: _has(redis, settings, child["task_id"], TaskSucceeded), timeout_s=15)
    events = await all_events(redis, settings)
    slow_done = next(
        i for i, e in enumerate(events) if isinstance(e, TaskSucceeded) and e.aggregate_id == slow["task_id"]
    )
    child_start = next(
        i for i, e in enumerate(events) if isinstance(e, TaskStarted) and e.aggregate_id == child["task_id"]
    )
    assert child_start > slow_done


async def _has(redis: Redis, settings: Settings, task_id: str, kind: type) -> bool:
    return any(isinstance(e, kind) for e in await events_of(redis, settings, task_id))


async def test_a_parent_that_fails_for_good_cancels_its_waiting_children(
    client: Client, settings: Settings, redis: Redis, pool: asyncpg.Pool
) -> None:
    parent = await _post(client, settings, task_name="fail", max_retries=0)
    child = await _post(client, settings, task_name="echo", depends_on=[parent["task_id"]])
    grandchild = await _post(client, settings, task_name="echo", depends_on=[child["task_id"]])
    async with running_coordinator(settings, redis, pool), running_worker(settings, redis):
        await eventually(lambda: _has(redis, settings, grandchild["task_id"], TaskCancelled), timeout_s=15)
    (cancelled,) = [e for e in await events_of(redis, settings, child["task_id"]) if isinstance(e, TaskCancelled)]
    assert cancelled.reason == f"parent {parent['task_id']} failed"
    assert not await _has(redis, settings, child["task_id"], TaskStarted)


async def test_an_unknown_parent_is_a_422(client: Client, settings: Settings) -> None:
    response = await client.post(
        "/api/v1/tasks", json={"task_name": "echo", "depends_on": [str(uuid4())]}, headers=auth(settings)
    )
    assert (
        response.status_code == 422
        and "depends_on" in response.json()["detail"]
        and "unknown" in response.json()["detail"]
    )


async def test_someone_elses_task_is_an_unknown_parent(client: Client, settings: Settings) -> None:
    theirs = (await client.post("/api/v1/tasks", json={"task_name": "echo"}, headers=auth(settings, "bob"))).json()
    response = await client.post(
        "/api/v1/tasks", json={"task_name": "echo", "depends_on": [theirs["task_id"]]}, headers=auth(settings)
    )
    assert response.status_code == 422


async def test_cycles_are_a_422(client: Client, settings: Settings) -> None:
    own = str(uuid4())
    selfish = await client.post(
        "/api/v1/tasks", json={"task_name": "echo", "task_id": own, "depends_on": [own]}, headers=auth(settings)
    )
    assert selfish.status_code == 422 and "cycle" in selfish.json()["detail"]
    # a -> b exists; submitting b' with the id of an ancestor of its own parent closes a loop.
    a_id = str(uuid4())
    b = await _post(client, settings, task_name="echo", task_id=str(uuid4()), depends_on=[])
    a = await _post(client, settings, task_name="echo", task_id=a_id, depends_on=[b["task_id"]])
    c = await _post(client, settings, task_name="echo", depends_on=[a["task_id"]])
    looped = await client.post(
        "/api/v1/tasks",
        json={"task_name": "echo", "task_id": a_id, "depends_on": [c["task_id"]]},
        headers=auth(settings),
    )
    assert looped.status_code == 422 and "cycle" in looped.json()["detail"]


async def test_a_parent_that_already_failed_is_a_422(client: Client, settings: Settings, redis: Redis) -> None:
    parent = await _post(client, settings, task_name="fail", max_retries=0)
    async with running_worker(settings, redis):
        await eventually(lambda: _has(redis, settings, parent["task_id"], TaskStarted))
        await eventually(lambda: _failed(redis, settings, parent["task_id"]))
    response = await client.post(
        "/api/v1/tasks", json={"task_name": "echo", "depends_on": [parent["task_id"]]}, headers=auth(settings)
    )
    assert response.status_code == 422 and "failed" in response.json()["detail"]


async def _failed(redis: Redis, settings: Settings, task_id: str) -> bool:
    from taskflow.events import TaskFailed

    return await _has(redis, settings, task_id, TaskFailed)


async def test_a_child_of_parents_already_completed_is_dispatched_at_once(
    client: Client, settings: Settings, redis: Redis
) -> None:
    parent = await _post(client, settings, task_name="echo")
    async with running_worker(settings, redis):
        await eventually(lambda: _has(redis, settings, parent["task_id"], TaskSucceeded))
    # Its live state may be long gone (markers expire after a day); the projection remembers.
    child = await _post(client, settings, task_name="echo", depends_on=[parent["task_id"]])
    assert child["status"] == "PENDING"
    async with running_worker(settings, redis):  # no coordinator needed
        await eventually(lambda: _has(redis, settings, child["task_id"], TaskSucceeded))


async def test_scheduled_at_with_depends_on_is_refused(client: Client, settings: Settings) -> None:
    parent = await _post(client, settings, task_name="echo")
    body = {"task_name": "echo", "depends_on": [parent["task_id"]], "scheduled_at": "2099-01-01T00:00:00Z"}
    response = await client.post("/api/v1/tasks", json=body, headers=auth(settings))
    assert response.status_code == 422 and "scheduled_at" in response.json()["detail"]
