"""Live feeds over SSE against a real gateway process, Redis, PostgreSQL and a worker:
stream ids, resume without gap or repeat (also across trimmed entries), visibility,
filters, task feeds that end, tickets, the per-user cap, one reader per process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, cast

import asyncpg
import httpx
from redis.asyncio import Redis

from taskflow.dev.ports import free_port
from taskflow.gateway.auth import Role, issue_token
from taskflow.gateway.feed.hub import Feed as HubFeed
from taskflow.gateway.feed.selection import Selection
from taskflow.replay.position import Position
from taskflow.settings import Settings
from taskflow.streams.keyspace import Keyspace
from tests.support.processes import Service, env_for, services, start
from tests.support.sse import Feed
from tests.support.stack import running_projector, running_worker
from tests.support.waiting import eventually


@contextmanager
def gateway(settings: Settings, **env: str) -> Iterator[tuple[str, Service]]:
    port = free_port()
    with services() as running:
        service = start(running, "gateway", "--port", str(port), env=env_for(settings, **env))
        yield f"http://127.0.0.1:{port}", service


def _auth(settings: Settings, sub: str, role: Role = "user") -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(settings.jwt_secret, sub, role)}"}


async def _ready(base: str) -> None:
    async with httpx.AsyncClient(base_url=base) as http:

        async def ready() -> bool:
            try:
                return (await http.get("/ready")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(ready, timeout_s=30)


@asynccontextmanager
async def feed(base: str, path: str, headers: dict[str, str], **params: Any) -> AsyncIterator[Feed]:
    async with (
        httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(30, read=None)) as http,
        http.stream("GET", path, headers=headers, params=params) as response,
    ):
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield Feed(response)


async def _submit(base: str, headers: dict[str, str], **body: Any) -> str:
    async with httpx.AsyncClient(base_url=base) as http:
        response = await http.post("/api/v1/tasks", json={"task_name": "echo", **body}, headers=headers)
        assert response.status_code == 201, response.text
        return cast("str", response.json()["task_id"])


async def test_the_feed_carries_new_events_live_with_their_stream_ids(settings: Settings, redis: Redis) -> None:
    with gateway(settings) as (base, _):
        await _ready(base)
        admin = _auth(settings, "root", "admin")
        async with feed(base, "/api/v1/events/stream", admin) as live:
            task_id = await _submit(base, admin, kwargs={"n": 1})
            async with running_worker(settings, redis):
                got = [m for m in await live.events(4) if m.json.get("aggregate_id") == task_id]
    stored = await redis.xrange(Keyspace.of(settings).events(0))
    ids = {entry_id: fields["type"] for entry_id, fields in stored}
    assert [m.event for m in got] == ["task.submitted", "task.started", "task.succeeded"]
    assert all(ids[cast("str", m.id)] == m.event for m in got)  # the SSE id is the stream id
    assert got[-1].json["result"] == {"n": 1}


async def test_a_user_sees_only_their_own_tasks_on_every_feed(settings: Settings, redis: Redis) -> None:
    alice, bob = _auth(settings, "alice"), _auth(settings, "bob")
    with gateway(settings) as (base, _):
        await _ready(base)
        async with (
            feed(base, "/api/v1/events/stream", alice) as alices,
            feed(base, "/api/v1/events/stream", bob) as bobs,
        ):
            mine = await _submit(base, alice)
            theirs = await _submit(base, bob)
            async with running_worker(settings, redis):  # worker events: for admins only
                seen_by_alice = await alices.events(3)
                seen_by_bob = await bobs.events(3)
        assert {m.json["aggregate_id"] for m in seen_by_alice} == {mine}
        assert {m.json["aggregate_id"] for m in seen_by_bob} == {theirs}
        async with httpx.AsyncClient(base_url=base) as http:
            hidden = await http.get(f"/api/v1/tasks/{mine}/stream", headers=bob)
            assert hidden.status_code == 404


async def test_resume_after_a_disconnect_has_no_gap_and_no_repeat_even_across_trimmed_entries(
    settings: Settings, redis: Redis, pool: asyncpg.Pool
) -> None:
    admin = _auth(settings, "root", "admin")
    stream = Keyspace.of(settings).events(0)
    with gateway(settings) as (base, _):
        await _ready(base)
        async with feed(base, "/api/v1/events/stream", admin) as live:
            for i in range(5):
                await _submit(base, admin, kwargs={"i": i})
            first = await live.events(3)
        # Disconnected: more events arrive, the projector archives everything, and the
        # oldest entries (the ones after our last id included) are trimmed from Redis.
        for i in range(5, 10):
            await _submit(base, admin, kwargs={"i": i})
        async with running_projector(settings, redis, pool):
            await eventually(lambda: _archived(pool, 10))
        checkpoint = await pool.fetchrow("SELECT last_ms, last_seq FROM projection_checkpoints")
        assert checkpoint is not None
        await redis.xtrim(stream, minid=f"{checkpoint['last_ms']}-{checkpoint['last_seq']}")
        assert await redis.xlen(stream) < 10
        for i in range(10, 12):
            await _submit(base, admin, kwargs={"i": i})
        async with feed(base, "/api/v1/events/stream", {**admin, "Last-Event-ID": cast("str", first[-1].id)}) as again:
            rest = await again.events(9)
    kwargs = [m.json["kwargs"]["i"] for m in first + rest]
    assert kwargs == list(range(12))
    ids = [cast("str", m.id) for m in first + rest]
    assert ids == sorted(ids, key=lambda i: tuple(int(p) for p in i.split("-"))) and len(set(ids)) == 12


async def _archived(pool: asyncpg.Pool, count: int) -> bool:
    return bool(await pool.fetchval("SELECT count(*) FROM event_archive WHERE event_type = 'task.submitted'") >= count)


async def test_a_task_feed_replays_its_task_from_the_submission_and_ends_with_it(
    settings: Settings, redis: Redis
) -> None:
    alice = _auth(settings, "alice")
    with gateway(settings) as (base, _):
        await _ready(base)
        task_id = await _submit(base, alice, kwargs={"x": 1})
        async with running_worker(settings, redis), feed(base, f"/api/v1/tasks/{task_id}/stream", alice) as one:
            messages = await one.events(5)
            assert await one.next() is None  # closed by the server after "end"
    assert [m.event for m in messages] == ["task.submitted", "task.started", "task.succeeded", "end"]


async def test_filters_by_event_type_status_and_task_name(settings: Settings, redis: Redis) -> None:
    admin = _auth(settings, "root", "admin")
    with gateway(settings) as (base, _):
        await _ready(base)
        async with (
            feed(base, "/api/v1/events/stream", admin, type="task.succeeded") as succeeded,
            feed(base, "/api/v1/events/stream", admin, status="RUNNING") as running,
            feed(base, "/api/v1/events/stream", admin, task_name="fail") as failing,
        ):
            await _submit(base, admin)
            await _submit(base, admin, task_name="fail", kwargs={"message": "x"}, max_retries=0)
            async with running_worker(settings, redis):
                assert [m.event for m in await succeeded.events(1)] == ["task.succeeded"]
                assert [m.event for m in await running.events(2)] == ["task.started"] * 2
                assert [m.event for m in await failing.events(3)] == ["task.submitted", "task.started", "task.failed"]
        async with httpx.AsyncClient(base_url=base) as http:
            bad = await http.get("/api/v1/events/stream", params={"type": "task.nope"}, headers=admin)
            assert bad.status_code == 422 and bad.json()["detail"].startswith("type:")


async def test_a_ticket_opens_one_feed_once_and_is_never_logged(settings: Settings) -> None:
    alice = _auth(settings, "alice")
    with gateway(settings) as (base, service):
        await _ready(base)
        async with httpx.AsyncClient(base_url=base) as http:
            answer = (await http.post("/api/v1/sse-tickets", headers=alice)).json()
        ticket = answer["ticket"]
        async with feed(base, "/api/v1/events/stream", {}, ticket=ticket) as live:
            task_id = await _submit(base, alice)
            (submitted,) = await live.events(1)
            assert submitted.json["aggregate_id"] == task_id
        async with httpx.AsyncClient(base_url=base) as http:
            again = await http.get("/api/v1/events/stream", params={"ticket": ticket})
            assert again.status_code == 401
            elsewhere = await http.get("/api/v1/tasks", params={"ticket": "x"})
            assert elsewhere.status_code == 401  # tickets open feeds only
        assert ticket not in service.output()


async def test_open_feeds_per_user_are_capped_across_the_gateway(settings: Settings) -> None:
    alice = _auth(settings, "alice")
    with gateway(settings, TASKFLOW_SSE_MAX_STREAMS_PER_USER="2", TASKFLOW_SSE_KEEPALIVE_SECONDS="0.3") as (base, _):
        await _ready(base)
        async with feed(base, "/api/v1/events/stream", alice) as one, feed(base, "/api/v1/events/stream", alice):
            async with httpx.AsyncClient(base_url=base) as http:
                third = await http.get("/api/v1/events/stream", headers=alice)
                assert third.status_code == 429 and "Retry-After" in third.headers
            comment = await one.next(timeout_s=5)
            assert comment is not None and comment.comment == "keep-alive"
        # Closed feeds no longer count.
        async with feed(base, "/api/v1/events/stream", alice), feed(base, "/api/v1/events/stream", alice):
            pass


async def test_one_redis_reader_serves_every_feed_of_a_gateway(settings: Settings, redis: Redis) -> None:
    admin = _auth(settings, "root", "admin")
    with gateway(settings) as (base, _):
        await _ready(base)
        async with (
            feed(base, "/api/v1/events/stream", admin) as a,
            feed(base, "/api/v1/events/stream", admin) as b,
            feed(base, "/api/v1/events/stream", _auth(settings, "carol")),
            feed(base, "/api/v1/events/stream", admin, type="task.started"),
        ):
            task_id = await _submit(base, admin)
            assert (await a.events(1))[0].json["aggregate_id"] == task_id
            assert (await b.events(1))[0].json["aggregate_id"] == task_id
            clients = await redis.client_list()
            readers = [c for c in clients if c.get("name") == Keyspace.of(settings).client_name("feed-reader")]
            assert len(readers) == 1


def test_a_client_too_slow_to_drain_its_buffer_is_cut_off_not_waited_for() -> None:
    from taskflow.events import TaskStarted
    from taskflow.gateway.auth import Principal

    slow = HubFeed(Selection(principal=Principal("root", "admin")), buffer=3)
    event = cast("Any", TaskStarted)
    for i in range(5):
        slow.offer((Position(i, 0, 0), event))
    assert slow.cut_off and slow.queue.qsize() == 3  # kept what it had; the client resumes after it


async def test_with_several_partitions_ids_carry_the_partition_and_resume_exactly(settings: Settings) -> None:
    admin = _auth(settings, "root", "admin")
    with gateway(settings, TASKFLOW_PARTITIONS="3") as (base, _):
        await _ready(base)
        async with feed(base, "/api/v1/events/stream", admin) as live:
            for i in range(12):
                await _submit(base, admin, kwargs={"i": i})
            first = await live.events(5)
        async with feed(base, "/api/v1/events/stream", {**admin, "Last-Event-ID": cast("str", first[-1].id)}) as again:
            rest = await again.events(7)
    assert [m.json["kwargs"]["i"] for m in first + rest] == list(range(12))
    assert all("@" in cast("str", m.id) for m in first + rest)
    assert len({m.json["aggregate_id"].split("-")[0] for m in first + rest}) == 12
