"""Recurring schedules: the cron arithmetic (a table, no Redis), and each tick fired
exactly once even with two coordinators while the leader is paused (SIGSTOP)."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from taskflow import cron
from taskflow.events import TaskSubmitted
from taskflow.gateway.app import create_app
from taskflow.settings import Settings
from taskflow.streams.keyspace import Keyspace
from tests.gateway.test_tasks_api import auth
from tests.support.processes import Service, env_for, services, start
from tests.support.stack import all_events
from tests.support.waiting import eventually

T = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("*/5 * * * *", T + timedelta(minutes=3), T + timedelta(minutes=5)),
        ("0 * * * *", T, T + timedelta(hours=1)),
        ("* * * * * */10", T + timedelta(seconds=1), T + timedelta(seconds=10)),
        ("30 9 * * 1", datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, 9, 30, tzinfo=UTC)),  # a Monday
    ],
)
def test_next_tick(expression: str, after: datetime, expected: datetime) -> None:
    assert cron.next_tick(expression, after) == expected


def test_a_tick_always_names_the_same_task() -> None:
    assert cron.tick_task_id("s1", T) == cron.tick_task_id("s1", T)
    assert cron.tick_task_id("s1", T) != cron.tick_task_id("s1", T + timedelta(seconds=1))
    assert cron.tick_task_id("s1", T) != cron.tick_task_id("s2", T)


@pytest.mark.parametrize("expression", ["", "every day", "61 * * * *", "* * * *"])
def test_invalid_expressions_are_refused(expression: str) -> None:
    assert not cron.is_valid(expression)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


async def test_schedules_are_created_listed_and_deleted(client: AsyncTestClient, settings: Settings) -> None:  # type: ignore[type-arg]
    created = await client.post(
        "/api/v1/tasks", json={"task_name": "echo", "cron": "*/5 * * * *"}, headers=auth(settings)
    )
    assert created.status_code == 201
    schedule = created.json()
    assert created.headers["location"] == f"/api/v1/schedules/{schedule['schedule_id']}"
    assert datetime.fromisoformat(schedule["next_run_at"]).minute % 5 == 0
    listed = (await client.get("/api/v1/schedules", headers=auth(settings))).json()["items"]
    assert [s["schedule_id"] for s in listed] == [schedule["schedule_id"]]
    assert (await client.get("/api/v1/schedules", headers=auth(settings, "bob"))).json()["items"] == []
    assert (
        await client.delete(f"/api/v1/schedules/{schedule['schedule_id']}", headers=auth(settings, "bob"))
    ).status_code == 404
    deleted = await client.delete(f"/api/v1/schedules/{schedule['schedule_id']}", headers=auth(settings))
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    assert (await client.get("/api/v1/schedules", headers=auth(settings))).json()["items"] == []
    assert (
        await client.delete(f"/api/v1/schedules/{schedule['schedule_id']}", headers=auth(settings))
    ).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"cron": "every minute"}, "cron"),
        ({"cron": "* * * * *", "scheduled_at": "2099-01-01T00:00:00Z"}, "scheduled_at"),
    ],
)
async def test_bad_schedules_are_422(
    client: AsyncTestClient, settings: Settings, body: dict[str, str], field: str
) -> None:  # type: ignore[type-arg]
    response = await client.post("/api/v1/tasks", json={"task_name": "echo", **body}, headers=auth(settings))
    assert response.status_code == 422 and field in response.json()["detail"]


async def test_each_tick_fires_exactly_once_while_the_leader_is_paused(
    client: AsyncTestClient,
    settings: Settings,
    redis: Redis,  # type: ignore[type-arg]
) -> None:
    """Every step waits on what it needs to have happened, never on a fixed sleep: the
    earlier version slept 5 s + 3 s and then demanded at least 9 ticks, which a slow
    start-up under load could miss by one (it failed once in a full run)."""
    created = await client.post(
        "/api/v1/tasks", json={"task_name": "echo", "cron": "* * * * * *"}, headers=auth(settings)
    )
    schedule_id = created.json()["schedule_id"]
    env = env_for(settings)  # lease 2 s: a paused leader loses the lead after 2 s
    with services() as running:
        coordinators = [start(running, "coordinator", env=env) for _ in range(2)]
        await eventually(lambda: _ticks(redis, settings), timeout_s=15)
        leader_id = await _leader(redis, settings)
        leader = await eventually(lambda: _service_of(coordinators, leader_id))
        leader.process.send_signal(signal.SIGSTOP)
        # The other coordinator takes the lead once the lease ran out, and fires on.
        await eventually(lambda: _led_by_another(redis, settings, leader_id), timeout_s=15)
        await _more_ticks(redis, settings, 3)
        leader.process.send_signal(signal.SIGCONT)  # the stale leader wakes up holding its work
        await eventually(lambda: _logged(leader, "coordinator_leadership_lost"), timeout_s=15)
        await _more_ticks(redis, settings, 2)
        await client.delete(f"/api/v1/schedules/{schedule_id}", headers=auth(settings))
    ticks = await _ticks(redis, settings)
    seconds = sorted(ticks)
    assert Counter(ticks).most_common(1)[0][1] == 1  # no tick doubled
    assert seconds == [seconds[0] + timedelta(seconds=i) for i in range(len(seconds))]  # none missed
    assert len(seconds) >= 6


async def _leader(redis: Redis, settings: Settings) -> str:
    return str(await redis.get(Keyspace.of(settings).coordinator_leader(0))).split("|")[0]


async def _led_by_another(redis: Redis, settings: Settings, leader_id: str) -> bool:
    return await _leader(redis, settings) not in ("None", leader_id)


async def _service_of(coordinators: list[Service], coordinator_id: str) -> Service | None:
    found = [c for c in coordinators if coordinator_id in c.output()]
    return found[0] if len(found) == 1 else None


async def _logged(service: Service, event: str) -> bool:
    return f'"event": "{event}"' in service.output()


async def _more_ticks(redis: Redis, settings: Settings, n: int) -> None:
    """Wait until ``n`` more ticks than now have fired."""
    fired = len(await _ticks(redis, settings))

    async def enough() -> bool:
        return len(await _ticks(redis, settings)) >= fired + n

    await eventually(enough, timeout_s=15)


async def _ticks(redis: Redis, settings: Settings) -> list[datetime]:
    return [
        e.scheduled_at for e in await all_events(redis, settings) if isinstance(e, TaskSubmitted) and e.scheduled_at
    ]


def test_catching_up_after_a_day_long_outage_stays_cheap(monkeypatch: pytest.MonkeyPatch) -> None:
    """Counted in steps, not timed: the walk covers the catch-up window, not the day."""
    steps = 0
    real_next_tick = cron.next_tick

    def counted(expression: str, after: datetime) -> datetime:
        nonlocal steps
        steps += 1
        return real_next_tick(expression, after)

    monkeypatch.setattr(cron, "next_tick", counted)
    ticks, following = cron.due_ticks("* * * * * *", T, T + timedelta(days=1))
    assert len(ticks) == cron.MAX_CATCH_UP and following == T + timedelta(days=1, seconds=1)
    assert steps <= cron.CATCH_UP_WINDOW.total_seconds() + 2  # not 86,400
