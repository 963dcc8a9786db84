"""The gateway against a stalled Redis or PostgreSQL: 503 within a bound, never a hang.

The servers are private ones (tests.support.stall) paused with SIGSTOP, the whole
PostgreSQL cluster included (postmaster and backends), not mocks nor a proxy: a real
stall keeps sockets open and buffers writes, so only timeouts on the client end it.
Stalls last a few seconds; the bound is set to 1 s so the module stays short.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import TypeVar

import httpx
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from taskflow.database import open_pool
from taskflow.events import decode
from taskflow.gateway.app import create_app
from taskflow.gateway.auth import issue_token
from taskflow.gateway.bounded_pool import BoundedPool
from taskflow.gateway.errors import DependencyUnavailable
from taskflow.settings import Settings
from taskflow.streams.keyspace import Keyspace
from tests.support.stall import StallableServer, private_postgres, private_redis, stalled

Client = AsyncTestClient  # type: ignore[type-arg]
T = TypeVar("T")

BOUND_S = 1.0
# Scheduling slack on a loaded CI machine; well under the bound, so a doubled bound
# (a retry, or a release waiting for the cancel) still fails.
SLACK_S = 0.5
# What today's code does instead is hang for the whole stall: fail fast rather than wait.
HANG_S = 6.0


@pytest.fixture(scope="module")
def stallable_redis() -> Iterator[StallableServer]:
    with private_redis() as server:
        yield server


@pytest.fixture(scope="module")
def stallable_postgres() -> Iterator[StallableServer]:
    with private_postgres() as server:
        yield server


@pytest.fixture
def stall_settings(stallable_redis: StallableServer, stallable_postgres: StallableServer) -> Settings:
    return Settings(
        redis_url=stallable_redis.url,
        database_url=stallable_postgres.url,
        namespace=f"tfstall{uuid.uuid4().hex[:10]}",
        jwt_secret="test-secret-" + "x" * 32,
        dependency_timeout_seconds=BOUND_S,
    )


@pytest.fixture
async def client(stall_settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(stall_settings)) as test_client:
        yield test_client


@pytest.fixture
def headers(stall_settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(stall_settings.jwt_secret, uuid.uuid4().hex)}"}


async def timed(call: Awaitable[T]) -> tuple[T, float]:
    started = time.monotonic()
    # Not wait_for: it would wait for the hung call to take its cancellation, which the
    # test client's portal thread delivers only once the server answers, after the stall.
    task = asyncio.ensure_future(call)
    done, _ = await asyncio.wait({task}, timeout=HANG_S)
    if not done:
        pytest.fail(f"no answer within {HANG_S} s")
    return task.result(), time.monotonic() - started


def assert_unavailable(response: httpx.Response, dependency: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "1"
    body = response.json()
    assert body["status_code"] == 503 and dependency in body["detail"]


async def submit(client: Client, headers: dict[str, str]) -> httpx.Response:
    return await client.post("/api/v1/tasks", json={"task_name": "echo", "kwargs": {"n": 1}}, headers=headers)


async def test_ready_answers_503_within_a_second_naming_a_stalled_redis(
    client: Client, stallable_redis: StallableServer
) -> None:
    with stalled(stallable_redis):
        response, elapsed = await timed(client.get("/ready"))
    assert response.status_code == 503 and elapsed < 1.0, (response.status_code, elapsed)
    body = response.json()
    assert body["redis"].startswith("unavailable") and body["postgres"] == "ok"
    assert (await client.get("/ready")).status_code == 200


async def test_ready_answers_503_within_a_second_naming_a_stalled_postgres(
    client: Client, stallable_postgres: StallableServer
) -> None:
    with stalled(stallable_postgres):
        response, elapsed = await timed(client.get("/ready"))
    assert response.status_code == 503 and elapsed < 1.0, (response.status_code, elapsed)
    body = response.json()
    assert body["postgres"].startswith("unavailable") and body["redis"] == "ok"
    assert (await client.get("/ready")).status_code == 200


async def test_submit_with_redis_stalled_is_503_within_the_bound_then_201_with_nothing_lost(
    client: Client, headers: dict[str, str], stall_settings: Settings, stallable_redis: StallableServer
) -> None:
    accepted = await submit(client, headers)
    assert accepted.status_code == 201
    with stalled(stallable_redis):
        response, elapsed = await timed(submit(client, headers))
        assert_unavailable(response, "redis")
        assert BOUND_S * 0.9 <= elapsed < BOUND_S + SLACK_S, elapsed
    after = await submit(client, headers)
    assert after.status_code == 201
    for answer in (accepted, after):
        task_id = answer.json()["task_id"]
        assert (await client.get(f"/api/v1/tasks/{task_id}", headers=headers)).status_code == 200
        assert await submitted_on_stream(stall_settings, answer.json()["event_id"]) == task_id


async def test_reads_with_postgres_stalled_are_503_within_the_bound_then_200(
    client: Client, headers: dict[str, str], stallable_postgres: StallableServer
) -> None:
    task_id = (await submit(client, headers)).json()["task_id"]
    with stalled(stallable_postgres):
        # (The test client serves one request at a time: these are sequential.)
        for path in ("/api/v1/tasks", f"/api/v1/tasks/{task_id}"):
            response, elapsed = await timed(client.get(path, headers=headers))
            assert_unavailable(response, "postgres")
            assert BOUND_S * 0.9 <= elapsed < BOUND_S + SLACK_S, elapsed
    # The same client, on a pool whose timed-out connections were replaced. (No projector
    # runs here: the list is empty and the task is read from its event.)
    assert (await client.get("/api/v1/tasks", headers=headers)).status_code == 200
    assert (await client.get(f"/api/v1/tasks/{task_id}", headers=headers)).json()["task_id"] == task_id


async def test_more_calls_than_connections_each_end_within_the_bound_and_the_pool_recovers(
    stall_settings: Settings, stallable_postgres: StallableServer
) -> None:
    bound_s = stall_settings.dependency_timeout_seconds
    pool = BoundedPool(await open_pool(stall_settings, max_size=4, command_timeout_seconds=bound_s), bound_s)
    try:
        with stalled(stallable_postgres):
            # Waiting for one of the 4 connections is within each call's deadline too.
            calls = asyncio.gather(*(pool.fetchval("SELECT 1") for _ in range(12)), return_exceptions=True)
            outcomes, elapsed = await timed(calls)
        assert elapsed < bound_s + SLACK_S, elapsed
        assert all(isinstance(o, DependencyUnavailable) and o.dependency == "postgres" for o in outcomes), outcomes
        # A dozen calls in a row after the stall: connections that timed out were replaced.
        assert [await pool.fetchval("SELECT 1") for _ in range(12)] == [1] * 12
    finally:
        await pool.close()


async def submitted_on_stream(settings: Settings, event_id: str) -> str | None:
    """The task id of the TaskSubmitted stored under ``event_id``, if it is there."""
    client: Redis = Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        entries = await client.xrange(Keyspace.of(settings).events(0), min=event_id, max=event_id)
    finally:
        await client.aclose()
    if not entries or entries[0][1]["type"] != "task.submitted":
        return None
    return str(decode(event_id, entries[0][1]["data"].encode()).aggregate_id)
