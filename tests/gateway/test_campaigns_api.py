"""``/api/v1/campaigns`` against real Redis and PostgreSQL: create (JSON and CSV), refusals,
the projection of the new campaign, reads, the CSV export, preview, ownership."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from taskflow.gateway.app import create_app
from taskflow.projections.maintenance import verify
from taskflow.settings import Settings
from taskflow.streams.keyspace import Keyspace
from tests.gateway.test_tasks_api import auth
from tests.support.stack import running_projector
from tests.support.waiting import eventually

Client = AsyncTestClient  # type: ignore[type-arg]
BASE = {
    "name": "Spring",
    "template_subject": "Hi {{ name }}",
    "template_body": "<p>Hello {{ name }} from {{ city }}</p>",
}
CSV = "email,name,city\nann@example.com,Ann,Paris\n=cmd@example.com,Eve,@SUM(A1)\nnope,Bob,Rome\nANN@example.com,Ann,Paris\n"


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


async def _create_csv(client: Client, settings: Settings, **form: str) -> dict[str, object]:
    response = await client.post(
        "/api/v1/campaigns",
        data={**BASE, **form},
        files={"recipients": ("people.csv", CSV.encode(), "text/csv")},
        headers=auth(settings),
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def test_a_csv_campaign_is_created_with_accepted_rejected_and_duplicates(
    client: Client, settings: Settings, redis: Redis
) -> None:
    body = await _create_csv(client, settings, rate_limit_per_minute="50")
    assert body["status"] == "DRAFT" and body["accepted"] == 2 and body["duplicates"] == 1
    assert [(r["row"], r["email"]) for r in body["rejected"]] == [(3, "nope")]  # type: ignore[attr-defined]
    state = await redis.hgetall(Keyspace.of(settings).campaign(str(body["campaign_id"])))
    assert (state["status"], state["owner"], state["rate_limit_per_minute"], state["pending"]) == (
        "draft",
        "alice",
        "50",
        "2",
    )


async def test_a_json_campaign_with_a_start_time_is_scheduled_and_reports_header_injection(
    client: Client, settings: Settings, redis: Redis
) -> None:
    response = await client.post(
        "/api/v1/campaigns",
        json={
            **BASE,
            "scheduled_at": "2030-01-01T00:00:00Z",
            "recipients": [
                {"email": "ann@example.com", "fields": {"city": "Paris"}},
                {"email": "a@b.c\r\nBcc: x@y.z", "fields": {"city": "Rome"}},
            ],
        },
        headers=auth(settings),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "SCHEDULED" and body["accepted"] == 1
    assert body["rejected"][0]["row"] == 2 and body["rejected"][0]["reason"] == "header-breaking characters in email"
    # Due for the coordinator at its start time.
    ks = Keyspace.of(settings)
    due = await redis.zscore(ks.campaigns_due(ks.partition_of(body["campaign_id"])), body["campaign_id"])
    assert due == datetime(2030, 1, 1, tzinfo=UTC).timestamp() * 1000


@pytest.mark.parametrize(
    ("field", "template"),
    [
        ("template_body", "{{ ''.__class__.__mro__ }}"),
        ("template_body", "{% for i in range(10**9) %}x{% endfor %}"),
        ("template_body", "{{ 'x' * 10**8 }}"),
        ("template_subject", "{{ unknown }}"),
        ("template_text", "{{ ''.__class__ }}"),
    ],
)
async def test_an_unsafe_template_is_a_422_naming_its_field(
    client: Client, settings: Settings, field: str, template: str
) -> None:
    body = {**BASE, field: template, "recipients": [{"email": "ann@example.com", "fields": {"city": "P"}}]}
    response = await client.post("/api/v1/campaigns", json=body, headers=auth(settings))
    assert response.status_code == 422 and response.json()["extra"][0]["key"] == field


async def test_no_email_column_and_no_valid_recipient_are_422s(client: Client, settings: Settings) -> None:
    response = await client.post(
        "/api/v1/campaigns",
        data=BASE,
        files={"recipients": ("p.csv", b"name\nAnn\n", "text/csv")},
        headers=auth(settings),
    )
    assert response.status_code == 422 and "no email column" in response.json()["detail"]
    response = await client.post(
        "/api/v1/campaigns", json={**BASE, "recipients": [{"email": "x"}]}, headers=auth(settings)
    )
    assert response.status_code == 422 and response.json()["extra"][1]["key"] == "recipients[row 1]"


async def test_the_projected_campaign_is_listed_read_paged_exported_and_hidden_from_others(
    client: Client, settings: Settings, redis: Redis, pool: asyncpg.Pool
) -> None:
    created = await _create_csv(client, settings)
    campaign_id = created["campaign_id"]
    # Read-your-writes: answered from Redis before the projector runs.
    early = await client.get(f"/api/v1/campaigns/{campaign_id}", headers=auth(settings))
    assert early.status_code == 200 and early.json()["total_recipients"] == 2
    async with running_projector(settings, redis, pool):
        await eventually(lambda: pool.fetchval("SELECT count(*) = 2 FROM email_recipients"))
    detail = (await client.get(f"/api/v1/campaigns/{campaign_id}", headers=auth(settings))).json()
    assert (detail["status"], detail["total_recipients"], detail["pending_count"], detail["progress_percent"]) == (
        "DRAFT",
        2,
        2,
        0.0,
    )
    listed = (await client.get("/api/v1/campaigns", headers=auth(settings))).json()
    assert [c["campaign_id"] for c in listed["items"]] == [campaign_id]

    first = (
        await client.get(f"/api/v1/campaigns/{campaign_id}/recipients?limit=1&status=PENDING", headers=auth(settings))
    ).json()
    second = (
        await client.get(
            f"/api/v1/campaigns/{campaign_id}/recipients?limit=1&cursor={first['next_cursor']}", headers=auth(settings)
        )
    ).json()
    assert {first["items"][0]["email"], second["items"][0]["email"]} == {"ann@example.com", "=cmd@example.com"}

    exported = await client.get(f"/api/v1/campaigns/{campaign_id}/recipients.csv", headers=auth(settings))
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    eve = next(r for r in rows if r["name"] == "Eve")
    assert eve["email"] == "'=cmd@example.com" and eve["fields"] == '{"city":"@SUM(A1)"}'

    for path in ("", "/recipients", "/recipients.csv"):
        assert (
            await client.get(f"/api/v1/campaigns/{campaign_id}{path}", headers=auth(settings, "mallory"))
        ).status_code == 404
    assert (await client.get("/api/v1/campaigns", headers=auth(settings, "mallory"))).json()["items"] == []
    assert (
        await client.get(f"/api/v1/campaigns/{campaign_id}", headers=auth(settings, "root", "admin"))
    ).status_code == 200

    assert (await verify(pool, dead_letter_retention=timedelta(days=30))).clean


async def test_preview_renders_for_a_recipient_or_a_sample(
    client: Client, settings: Settings, redis: Redis, pool: asyncpg.Pool
) -> None:
    campaign_id = (await _create_csv(client, settings))["campaign_id"]
    async with running_projector(settings, redis, pool):
        await eventually(lambda: pool.fetchval("SELECT count(*) = 2 FROM email_recipients"))
    url = f"/api/v1/campaigns/{campaign_id}/preview"
    by_email = (await client.post(url, json={"email": "ANN@example.com"}, headers=auth(settings))).json()
    assert by_email == {"subject": "Hi Ann", "html": "<p>Hello Ann from Paris</p>", "text": "Hello Ann from Paris"}
    sample = (await client.post(url, json={"name": "<Zoe>", "fields": {"city": "Oslo"}}, headers=auth(settings))).json()
    assert sample["html"] == "<p>Hello &lt;Zoe&gt; from Oslo</p>"
    missing = await client.post(url, json={"fields": {}}, headers=auth(settings))
    assert missing.status_code == 422 and missing.json()["extra"][0]["key"] == "template_body"
    assert (await client.post(url, json={"email": "x@example.com"}, headers=auth(settings))).status_code == 404
    assert (
        await client.post(url, json={"email": "ann@example.com"}, headers=auth(settings, "mallory"))
    ).status_code == 404
