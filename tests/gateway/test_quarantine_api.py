"""``GET /api/v1/quarantine`` and its count in ``/api/v1/stats``: what could not be
projected, visible to admins only."""

from __future__ import annotations

import base64

import asyncpg
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from taskflow.gateway.app import create_app
from taskflow.gateway.auth import issue_token
from taskflow.settings import Settings
from taskflow.streams.groups import ensure_groups
from taskflow.streams.keyspace import Keyspace
from tests.support.stack import running_projector, submit, submitted
from tests.support.waiting import eventually


def _auth(settings: Settings, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(settings.jwt_secret, 'ops', role)}"}  # type: ignore[arg-type]


async def test_admins_page_through_quarantined_entries_and_users_are_refused(
    redis: Redis, settings: Settings, pool: asyncpg.Pool
) -> None:
    await ensure_groups(redis, Keyspace.of(settings))
    stream = Keyspace.of(settings).events(0)
    bad = [b"{broken %d \xff" % i for i in range(3)]
    ids = [str(await redis.xadd(stream, {"type": "task.submitted", "data": raw})) for raw in bad]
    good = submitted("echo")
    await submit(redis, settings, good)
    async with running_projector(settings, redis, pool):
        await eventually(lambda: pool.fetchval("SELECT count(*) = 3 FROM quarantined_entries"))
    async with AsyncTestClient(app=create_app(settings)) as client:
        assert (await client.get("/api/v1/quarantine", headers=_auth(settings, "user"))).status_code == 403
        stats = (await client.get("/api/v1/stats", headers=_auth(settings, "admin"))).json()
        assert stats["quarantined"] == 3
        assert (await client.get("/api/v1/stats", headers=_auth(settings, "user"))).json()["quarantined"] is None
        first = (await client.get("/api/v1/quarantine?limit=2", headers=_auth(settings, "admin"))).json()
        assert len(first["items"]) == 2 and first["next_cursor"]
        rest = await client.get(
            "/api/v1/quarantine", params={"limit": 2, "cursor": first["next_cursor"]}, headers=_auth(settings, "admin")
        )
        items = first["items"] + rest.json()["items"]
        assert rest.json()["next_cursor"] is None
        assert sorted(i["entry_id"] for i in items) == sorted(ids)
        by_id = {i["entry_id"]: i for i in items}
        for entry_id, raw in zip(ids, bad, strict=True):
            assert base64.b64decode(by_id[entry_id]["raw_base64"]) == raw
            assert by_id[entry_id]["raw_text"].endswith("\\xff")
            assert by_id[entry_id]["source"] == "projector" and by_id[entry_id]["stream"] == stream
        workers_only = await client.get("/api/v1/quarantine?source=worker", headers=_auth(settings, "admin"))
        assert workers_only.json()["items"] == []
        bad_cursor = await client.get("/api/v1/quarantine?cursor=zzz", headers=_auth(settings, "admin"))
        assert bad_cursor.status_code == 422 and "cursor" in bad_cursor.json()["detail"]
