"""The whole pipeline over separate OS processes: gateway, projector, workers."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
from redis.asyncio import Redis

from taskflow.dev.ports import free_port
from taskflow.events import TaskDeadLettered, TaskFailed, TaskSucceeded
from taskflow.gateway.auth import issue_token
from taskflow.settings import Settings
from taskflow.streams.keyspace import Keyspace
from tests.support.processes import env_for, services, start
from tests.support.stack import all_events
from tests.support.waiting import eventually

TERMINAL = (TaskSucceeded, TaskFailed, TaskDeadLettered)


async def test_tasks_submitted_over_http_complete_and_are_projected(
    settings: Settings, redis: Redis, pool: asyncpg.Pool
) -> None:
    port = free_port()
    env = env_for(settings)
    token = issue_token(settings.jwt_secret, "e2e")
    with services() as running:
        gateway = start(running, "gateway", "--port", str(port), env=env)
        start(running, "projector", env=env)
        workers = [start(running, "worker", "--concurrency", "4", env=env) for _ in range(2)]
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"}
        ) as http:
            await eventually(lambda: _ready(http), timeout_s=30)
            created = [
                (await http.post("/api/v1/tasks", json={"task_name": "echo", "kwargs": {"i": i}})).json()
                for i in range(40)
            ]
            failing = (
                await http.post(
                    "/api/v1/tasks",
                    json={"task_name": "fail", "kwargs": {"message": "x"}, "max_retries": 0},
                )
            ).json()

            async def all_done() -> bool:
                rows = await pool.fetch("SELECT status FROM tasks WHERE status IN ('COMPLETED', 'FAILED')")
                return len(rows) == 41

            await eventually(all_done, timeout_s=60)
            sample = (await http.get(f"/api/v1/tasks/{created[7]['task_id']}")).json()
            assert sample["status"] == "COMPLETED" and sample["result"] == {"i": 7}
            assert (await http.get(f"/api/v1/tasks/{failing['task_id']}")).json()["status"] == "FAILED"
        # Every process stops cleanly on SIGTERM with exit code 0.
        assert [w.terminate() for w in workers] == [0, 0]
        assert gateway.terminate() == 0

        async def archived_everything() -> bool:
            stored = await pool.fetchval("SELECT count(*) FROM event_archive")
            return bool(stored == await redis.xlen(Keyspace.of(settings).events(0)))

        await eventually(archived_everything, timeout_s=30)  # the workers' stop events too
        assert running[1].terminate() == 0
    terminal = [e for e in await all_events(redis, settings) if isinstance(e, TERMINAL)]
    assert len(terminal) == 41 == len({e.aggregate_id for e in terminal})
    assert await pool.fetchval("SELECT count(*) FROM event_archive") == await redis.xlen(
        Keyspace.of(settings).events(0)
    )


async def _ready(http: httpx.AsyncClient) -> bool:
    try:
        return (await http.get("/ready")).status_code == 200
    except httpx.TransportError:
        await asyncio.sleep(0.1)
        return False
