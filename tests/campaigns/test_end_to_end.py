"""A campaign as a user runs it, end to end: CSV upload over REST (bad rows reported and
never sent), start, real worker, coordinator and projector processes, a real SMTP server
on loopback; every valid recipient mailed exactly once and projected SENT, the campaign
COMPLETED; then pause within a second and a resume that mails nobody twice."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from taskflow.gateway.app import create_app
from taskflow.settings import Settings
from taskflow.streams.keyspace import Keyspace
from tests.gateway.test_tasks_api import auth
from tests.support.processes import env_for, services, start
from tests.support.smtp import RecordingHandler, smtp_server
from tests.support.waiting import eventually

Client = AsyncTestClient  # type: ignore[type-arg]


@pytest.fixture
def smtp() -> Iterator[tuple[RecordingHandler, int]]:
    with smtp_server() as found:
        yield found


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


def _env(settings: Settings, port: int) -> dict[str, str]:
    return env_for(
        settings,
        TASKFLOW_SMTP_HOST="127.0.0.1",
        TASKFLOW_SMTP_PORT=str(port),
        TASKFLOW_SMTP_FROM="News <news@mail.example.com>",
        TASKFLOW_PUBLIC_URL="https://mail.example.com",
    )


CSV = (
    "email,name,city\n"
    "ann@example.com,Ann,Paris\n"
    "not-an-address,Bad,Rome\n"
    "bo@example.com,Bo,Oslo\n"
    "ANN@example.com,Ann again,Paris\n"
    '"cy@example.com\r\nBcc: evil@example.com",Cy,Lima\n'
    "di@example.com,Di,Kyiv\n"
)


async def _campaign(client: Client, settings: Settings, campaign_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/campaigns/{campaign_id}", headers=auth(settings))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_csv_campaign_is_mailed_once_per_valid_recipient_and_projected(
    client: Client, settings: Settings, redis: Redis, pool: asyncpg.Pool, smtp: tuple[RecordingHandler, int]
) -> None:
    handler, port = smtp
    created = await client.post(
        "/api/v1/campaigns",
        data={
            "name": "Spring",
            "template_subject": "Hi {{ name }}",
            "template_body": "<p>{{ name }} in {{ city }}</p>",
        },
        files={"recipients": ("list.csv", CSV.encode(), "text/csv")},
        headers=auth(settings),
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["accepted"], body["duplicates"]) == (3, 1)
    assert sorted(r["row"] for r in body["rejected"]) == [2, 5]
    campaign_id = body["campaign_id"]
    with services() as running:
        for command in ("worker", "projector", "coordinator"):
            start(running, command, env=_env(settings, port))
        started = await client.post(f"/api/v1/campaigns/{campaign_id}/start", headers=auth(settings))
        assert started.status_code == 202 and started.json()["send_tasks"] == 3

        async def completed() -> bool:
            found = await _campaign(client, settings, campaign_id)
            return bool(found["status"] == "COMPLETED")

        await eventually(completed, timeout_s=60)
    campaign = await _campaign(client, settings, campaign_id)
    assert (campaign["sent_count"], campaign["failed_count"], campaign["total_recipients"]) == (3, 0, 3)
    assert campaign["completed_at"]
    received = Counter(address for mail in handler.received for address in mail.rcpt_tos)
    assert received == Counter({"ann@example.com": 1, "bo@example.com": 1, "di@example.com": 1})
    (ann,) = handler.mails_to("ann@example.com")
    assert ann.message["Subject"] == "Hi Ann" and "Ann in Paris" in ann.message.get_body(("html",)).get_content()
    assert not any(b"evil@example.com" in mail.data for mail in handler.received)
    rows = await pool.fetch("SELECT email, status FROM email_recipients WHERE campaign_id = $1::uuid", campaign_id)
    assert sorted((r["email"], r["status"]) for r in rows) == [
        ("ann@example.com", "SENT"),
        ("bo@example.com", "SENT"),
        ("di@example.com", "SENT"),
    ]


async def test_pause_stops_sends_within_a_second_and_resume_mails_nobody_twice(
    client: Client, settings: Settings, redis: Redis, smtp: tuple[RecordingHandler, int]
) -> None:
    handler, port = smtp
    people = [{"email": f"p{i}@example.com", "name": f"P{i}"} for i in range(24)]
    created = await client.post(
        "/api/v1/campaigns",
        json={
            "name": "Slow",
            "template_subject": "Hi {{ name }}",
            "template_body": "<p>Hello {{ name }}</p>",
            "rate_limit_per_minute": 240,  # one mail every 250 ms
            "recipients": people,
        },
        headers=auth(settings),
    )
    assert created.status_code == 201, created.text
    campaign_id = created.json()["campaign_id"]
    base = f"/api/v1/campaigns/{campaign_id}"
    with services() as running:
        for _ in range(2):
            start(running, "worker", "--concurrency", "8", env=_env(settings, port))
        start(running, "coordinator", env=_env(settings, port))
        assert (await client.post(f"{base}/start", headers=auth(settings))).status_code == 202
        await eventually(lambda: _received_at_least(handler, 4), timeout_s=30)
        paused = await client.post(f"{base}/pause", params={"reason": "typo"}, headers=auth(settings))
        assert paused.status_code == 202
        paused_at = time.monotonic()
        await asyncio.sleep(2.5)
        late = [mail for mail in handler.received if mail.at > paused_at + 1.0]
        assert late == [], f"{len(late)} mails went out more than 1 s after the pause"
        during = len(handler.received)
        assert during < len(people)
        resumed = await client.post(f"{base}/resume", headers=auth(settings))
        assert resumed.status_code == 202, resumed.text

        async def all_sent() -> bool:
            state = await redis.hget(Keyspace.of(settings).campaign(campaign_id), "status")  # type: ignore[misc]
            return state == "completed"

        await eventually(all_sent, timeout_s=60)
    received = Counter(address for mail in handler.received for address in mail.rcpt_tos)
    assert received == Counter({p["email"]: 1 for p in people}), "someone was mailed twice or not at all"


async def _received_at_least(handler: RecordingHandler, n: int) -> bool:
    return len(handler.received) >= n
