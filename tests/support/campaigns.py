"""A campaign's Redis state written as the shared contract has it
(``taskflow/campaigns/__init__.py``), and its send tasks submitted: what campaign creation
and start will do, so sending is tested on its own."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import msgspec
from redis.asyncio import Redis

from taskflow.campaigns.ids import recipient_id
from taskflow.events import TaskSubmitted
from taskflow.settings import Settings
from taskflow.streams.keyspace import Keyspace
from tests.support.stack import submit

TEMPLATE = {
    "subject": "Hello {{ name }}",
    "body": "<p>Hi {{ name }}, your code is <b>{{ code }}</b>.</p>",
    "text": None,
    "variables": {"code": "none"},
}


class Recipient(msgspec.Struct, frozen=True):
    email: str
    name: str = ""
    fields: dict[str, str] = {}


async def seed_campaign(
    redis: Redis,
    settings: Settings,
    recipients: list[Recipient],
    *,
    owner: str = "alice",
    rate_limit_per_minute: int = 6000,
    status: str = "running",
    template: dict[str, object] | None = None,
    campaign_id: str | None = None,
) -> str:
    """The campaign hash (counters included) and a ledger with every recipient pending."""
    campaign_id = campaign_id or str(uuid4())
    keyspace = Keyspace.of(settings)
    await redis.hset(
        keyspace.campaign(campaign_id),
        mapping={
            "status": status,
            "owner": owner,
            "rate_limit_per_minute": rate_limit_per_minute,
            "template": msgspec.json.encode(template or TEMPLATE).decode(),
            "pending": len(recipients),
            "sent": 0,
            "failed": 0,
            "skipped": 0,
        },
    )
    if recipients:
        await redis.hset(
            keyspace.campaign_ledger(campaign_id),
            mapping={recipient_id(campaign_id, r.email): "pending" for r in recipients},
        )
    return campaign_id


def send_task(campaign_id: str, recipient: Recipient, *, max_retries: int = 3) -> TaskSubmitted:
    """The send_email task as campaign start submits it (its events carry the campaign)."""
    kwargs = {
        "campaign_id": campaign_id,
        "recipient_id": recipient_id(campaign_id, recipient.email),
        "email": recipient.email,
        "name": recipient.name,
        "fields": recipient.fields,
    }
    return TaskSubmitted(
        aggregate_id=str(uuid4()),
        occurred_at=datetime.now(UTC),
        correlation_id=campaign_id,
        actor="alice",
        task_name="send_email",
        kwargs=msgspec.Raw(msgspec.json.encode(kwargs)),
        max_retries=max_retries,
        campaign_id=campaign_id,
    )


async def start_sending(
    redis: Redis, settings: Settings, campaign_id: str, recipients: list[Recipient], *, max_retries: int = 3
) -> list[TaskSubmitted]:
    """One send task per recipient, each assigned its recipient in the ledger as a start
    does (``pending:<task id>``, ADR 0030), then submitted."""
    tasks = [send_task(campaign_id, r, max_retries=max_retries) for r in recipients]
    if tasks:
        await redis.hset(  # type: ignore[misc]
            Keyspace.of(settings).campaign_ledger(campaign_id),
            mapping={
                recipient_id(campaign_id, r.email): f"pending:{t.aggregate_id}"
                for r, t in zip(recipients, tasks, strict=True)
            },
        )
    for event in tasks:
        await submit(redis, settings, event)
    return tasks


async def ledger_of(redis: Redis, settings: Settings, campaign_id: str) -> dict[str, str]:
    ledger: dict[str, str] = await redis.hgetall(Keyspace.of(settings).campaign_ledger(campaign_id))  # type: ignore[misc]
    return ledger


async def counters_of(redis: Redis, settings: Settings, campaign_id: str) -> dict[str, str]:
    found: dict[str, str] = await redis.hgetall(Keyspace.of(settings).campaign(campaign_id))  # type: ignore[misc]
    return {k: found[k] for k in ("status", "pending", "sent", "failed", "skipped")}
