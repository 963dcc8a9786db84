"""Start, pause, resume, resend-failed over REST against real Redis and PostgreSQL: the
status changes, the ledger assigns each pending recipient to exactly one send task, a
pause unassigns the queued ones in the same step, and each action is an event (with the
audit record naming who and why)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from uuid import uuid4

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from taskflow.campaigns import control
from taskflow.campaigns.ids import recipient_id
from taskflow.coordinator import campaigns as coordinator_campaigns
from taskflow.coordinator.campaigns import StalledSends, orphaned_by
from taskflow.events import (
    CampaignCompleted,
    CampaignPaused,
    CampaignRecipient,
    CampaignResumed,
    CampaignStarted,
    FailedResent,
    OperatorActed,
    RecipientFailed,
    RecipientsAdded,
    TaskSubmitted,
)
from taskflow.gateway.app import create_app
from taskflow.settings import Settings
from taskflow.streams.groups import append_event, ensure_groups
from taskflow.streams.keyspace import Keyspace
from tests.gateway.test_tasks_api import auth
from tests.support.stack import all_events, running_coordinator
from tests.support.waiting import eventually

Client = AsyncTestClient  # type: ignore[type-arg]


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


async def draft_campaign(redis: Redis, settings: Settings, owner: str, emails: list[str]) -> tuple[str, list[str]]:
    """A DRAFT campaign as the intake leaves it (campaigns/__init__.py's contract):
    the Redis hash and the RecipientsAdded events."""
    ks = Keyspace.of(settings)
    await ensure_groups(redis, ks)
    campaign_id = str(uuid4())
    recipients = tuple(
        CampaignRecipient(recipient_id=recipient_id(campaign_id, e), email=e, name=f"N{i}", fields={"n": str(i)})
        for i, e in enumerate(emails)
    )
    await redis.hset(  # type: ignore[misc]
        ks.campaign(campaign_id),
        mapping={"status": "draft", "owner": owner, "rate_limit_per_minute": 100, "template": "{}"},
    )
    await append_event(
        redis,
        ks,
        RecipientsAdded(
            aggregate_id=campaign_id,
            occurred_at=datetime.now(UTC),
            correlation_id=campaign_id,
            actor=owner,
            recipients=recipients,
        ),
    )
    return campaign_id, [r.recipient_id for r in recipients]


async def _send_tasks(redis: Redis, settings: Settings, campaign_id: str) -> dict[str, str]:
    """recipient id -> task id of every send task submitted for the campaign."""
    tasks = {}
    for event in await all_events(redis, settings):
        if isinstance(event, TaskSubmitted) and event.campaign_id == campaign_id:
            kwargs = json.loads(bytes(event.kwargs))
            assert event.task_name == "send_email" and set(kwargs) == {
                "campaign_id",
                "recipient_id",
                "email",
                "name",
                "fields",
            }
            tasks.setdefault(kwargs["recipient_id"], event.aggregate_id)
    return tasks


async def test_start_pause_resume_assign_each_recipient_to_one_task_at_a_time(
    client: Client, settings: Settings, redis: Redis
) -> None:
    ks = Keyspace.of(settings)
    campaign_id, ids = await draft_campaign(redis, settings, "alice", [f"u{i}@example.com" for i in range(5)])
    base = f"/api/v1/campaigns/{campaign_id}"

    started = await client.post(f"{base}/start", params={"reason": "go"}, headers=auth(settings))
    assert started.status_code == 202, started.text
    assert started.json()["send_tasks"] == 5 and started.json()["status"] == "RUNNING"
    first = await _send_tasks(redis, settings, campaign_id)
    assert set(first) == set(ids)
    ledger = await redis.hgetall(ks.campaign_ledger(campaign_id))  # type: ignore[misc]
    assert ledger == {rid: f"pending:{first[rid]}" for rid in ids}
    state = await redis.hgetall(ks.campaign(campaign_id))  # type: ignore[misc]
    assert (state["status"], state["pending"], state["sent"]) == ("running", "5", "0")

    # Someone else cannot see or act on it; a second start re-drives without a new assignment.
    assert (await client.post(f"{base}/pause", headers=auth(settings, "bob"))).status_code == 404
    assert (await client.post(f"{base}/resume", headers=auth(settings))).status_code == 409

    paused = await client.post(f"{base}/pause", params={"reason": "typo"}, headers=auth(settings))
    assert paused.status_code == 202 and paused.json()["status"] == "PAUSED"
    assert set((await redis.hgetall(ks.campaign_ledger(campaign_id))).values()) == {"pending"}  # type: ignore[misc]
    # One recipient was sent meanwhile (as the ledger script records it).
    await redis.hset(ks.campaign_ledger(campaign_id), ids[0], "sent")  # type: ignore[misc]

    resumed = await client.post(f"{base}/resume", headers=auth(settings))
    assert resumed.status_code == 202 and resumed.json()["send_tasks"] == 4
    ledger = await redis.hgetall(ks.campaign_ledger(campaign_id))  # type: ignore[misc]
    assert ledger[ids[0]] == "sent"
    for rid in ids[1:]:
        assert ledger[rid].startswith("pending:") and ledger[rid] != f"pending:{first[rid]}"

    await redis.hset(ks.campaign_ledger(campaign_id), mapping={ids[1]: "failed", ids[2]: "bounced"})  # type: ignore[misc]
    await redis.hset(ks.campaign(campaign_id), mapping={"failed": 2, "pending": 2})  # type: ignore[misc]
    again = await client.post(f"{base}/resend-failed", headers=auth(settings))
    assert again.status_code == 202 and again.json()["send_tasks"] == 1
    ledger = await redis.hgetall(ks.campaign_ledger(campaign_id))  # type: ignore[misc]
    assert ledger[ids[1]].startswith("pending:") and ledger[ids[2]] == "bounced"
    state = await redis.hgetall(ks.campaign(campaign_id))  # type: ignore[misc]
    assert (state["failed"], state["pending"]) == ("1", "3")

    events = [e for e in await all_events(redis, settings) if e.aggregate_id == campaign_id]
    kinds = [type(e) for e in events if not isinstance(e, RecipientsAdded)]
    assert kinds == [
        CampaignStarted,
        OperatorActed,
        CampaignPaused,
        OperatorActed,
        CampaignResumed,
        OperatorActed,
        FailedResent,
        OperatorActed,
    ]
    started_event = next(e for e in events if isinstance(e, CampaignStarted))
    assert started_event.send_tasks == 5 and started_event.actor == "alice"
    resent = next(e for e in events if isinstance(e, FailedResent))
    assert resent.recipients == (ids[1],)
    audits = [e for e in events if isinstance(e, OperatorActed)]
    assert [(a.action, a.reason, a.target_kind) for a in audits] == [
        ("start", "go", "campaign"),
        ("pause", "typo", "campaign"),
        ("resume", "", "campaign"),
        ("resend", "", "campaign"),
    ]


async def test_unknown_campaigns_are_404_and_a_start_retried_submits_no_duplicate(
    client: Client, settings: Settings, redis: Redis
) -> None:
    assert (await client.post(f"/api/v1/campaigns/{uuid4()}/start", headers=auth(settings))).status_code == 404
    campaign_id, _ = await draft_campaign(redis, settings, "alice", ["a@example.com", "b@example.com"])
    first = await client.post(f"/api/v1/campaigns/{campaign_id}/start", headers=auth(settings))
    assert first.status_code == 202
    again = await client.post(f"/api/v1/campaigns/{campaign_id}/start", headers=auth(settings))
    assert again.status_code == 202
    # Two submissions per recipient at most, and the ledger names exactly one task each.
    ledger = await redis.hgetall(Keyspace.of(settings).campaign_ledger(campaign_id))  # type: ignore[misc]
    assert len(set(ledger.values())) == 2 and all(v.startswith("pending:") for v in ledger.values())
    admin = await client.post(f"/api/v1/campaigns/{campaign_id}/pause", headers=auth(settings, "root", "admin"))
    assert admin.status_code == 202
    events = await all_events(redis, settings)
    assert [type(e) for e in events if isinstance(e, CampaignStarted)] == [CampaignStarted]


async def test_a_scheduled_campaign_is_started_by_the_coordinator_when_due(
    settings: Settings, redis: Redis, pool: asyncpg.Pool
) -> None:
    ks = Keyspace.of(settings)
    campaign_id, ids = await draft_campaign(redis, settings, "alice", ["a@example.com", "b@example.com"])
    await redis.hset(ks.campaign(campaign_id), "status", "scheduled")  # type: ignore[misc]
    await redis.zadd(ks.campaigns_due(0), {campaign_id: int(time.time() * 1000) + 300})
    async with running_coordinator(settings, redis, pool):

        async def started() -> bool:
            return await redis.hget(ks.campaign(campaign_id), "status") == "running"  # type: ignore[misc]

        await eventually(started, timeout_s=10)
    assert set(await _send_tasks(redis, settings, campaign_id)) == set(ids)
    assert await redis.zcard(ks.campaigns_due(0)) == 0
    (event,) = [e for e in await all_events(redis, settings) if isinstance(e, CampaignStarted)]
    assert event.actor is not None and event.actor.startswith("coordinator:") and event.send_tasks == 2
    assert not [e for e in await all_events(redis, settings) if isinstance(e, OperatorActed)]


@pytest.mark.parametrize(
    ("task_state", "orphaned"),
    [
        (None, "gone"),
        ("failed", "failed"),
        ("timed_out", "timed_out"),
        ("cancelled", "cancelled"),
        ("succeeded", "succeeded"),
        ("running", None),
        ("pending", None),
        ("scheduled", None),
    ],
)
def test_a_recipient_is_orphaned_only_by_a_task_that_ended_or_is_gone(
    task_state: str | None, orphaned: str | None
) -> None:
    assert orphaned_by(task_state) == orphaned


async def test_recipients_left_by_a_dead_send_task_are_failed_once_the_campaign_stalls(
    settings: Settings, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A send task timed out holding one recipient (``sending:``), another was
    dead-lettered before it began (``pending:``); the third recipient was sent. Once the
    campaign makes no progress, the two are recorded FAILED and the campaign completes."""
    monkeypatch.setattr(coordinator_campaigns, "STALL_S", 0.0)
    ks = Keyspace.of(settings)
    campaign_id, ids = await draft_campaign(
        redis, settings, "alice", ["a@example.com", "b@example.com", "c@example.com"]
    )
    await redis.hset(
        ks.campaign(campaign_id), mapping={"status": "running", "pending": 2, "sent": 1, "failed": 0, "skipped": 0}
    )  # type: ignore[misc]
    await redis.hset(
        ks.campaign_ledger(campaign_id),
        mapping={ids[0]: "sending:t-timed-out", ids[1]: "pending:t-dead", ids[2]: "sent"},
    )  # type: ignore[misc]
    await redis.hset(ks.task_marker("t-timed-out"), "state", "timed_out")  # type: ignore[misc]
    await redis.hset(ks.task_marker("t-dead"), "state", "failed")  # type: ignore[misc]
    await redis.sadd(ks.campaigns_running(0), campaign_id)  # type: ignore[misc]
    sweeper = StalledSends(redis, ks)
    assert await sweeper.sweep(0, "leader") == 0  # first look: progress noted, nothing judged
    assert await sweeper.sweep(0, "leader") == 2
    ledger = await redis.hgetall(ks.campaign_ledger(campaign_id))  # type: ignore[misc]
    assert (ledger[ids[0]], ledger[ids[1]], ledger[ids[2]]) == ("failed", "failed", "sent")
    state = await redis.hgetall(ks.campaign(campaign_id))  # type: ignore[misc]
    assert (state["status"], state["pending"], state["failed"]) == ("completed", "0", "2")
    failures = [e for e in await all_events(redis, settings) if isinstance(e, RecipientFailed)]
    assert sorted(e.task_id for e in failures) == ["t-dead", "t-timed-out"]
    assert "ended (timed_out) without recording it" in next(e.error for e in failures if e.task_id == "t-timed-out")
    assert await sweeper.sweep(0, "leader") == 0 and await redis.scard(ks.campaigns_running(0)) == 0


async def test_a_campaign_whose_last_recipients_ended_while_paused_completes_on_resume(
    client: Client, settings: Settings, redis: Redis
) -> None:
    ks = Keyspace.of(settings)
    campaign_id, ids = await draft_campaign(redis, settings, "alice", ["a@example.com", "b@example.com"])
    base = f"/api/v1/campaigns/{campaign_id}"
    assert (await client.post(f"{base}/start", headers=auth(settings))).status_code == 202
    assert (await client.post(f"{base}/pause", headers=auth(settings))).status_code == 202
    # The two sends in flight at the pause finished meanwhile (as record.lua leaves them).
    await redis.hset(ks.campaign_ledger(campaign_id), mapping={ids[0]: "sent", ids[1]: "sent"})  # type: ignore[misc]
    await redis.hset(ks.campaign(campaign_id), mapping={"pending": 0, "sent": 2})  # type: ignore[misc]
    resumed = await client.post(f"{base}/resume", headers=auth(settings))
    assert resumed.status_code == 202 and resumed.json()["send_tasks"] == 0
    assert await redis.hget(ks.campaign(campaign_id), "status") == "completed"  # type: ignore[misc]
    (done,) = [e for e in await all_events(redis, settings) if isinstance(e, CampaignCompleted)]
    assert (done.sent, done.failed, done.skipped) == (2, 0, 0)


async def test_an_early_start_takes_a_scheduled_campaign_out_of_the_due_set(
    client: Client, settings: Settings, redis: Redis
) -> None:
    ks = Keyspace.of(settings)
    campaign_id, _ = await draft_campaign(redis, settings, "alice", ["a@example.com"])
    await redis.hset(ks.campaign(campaign_id), "status", "scheduled")  # type: ignore[misc]
    await redis.zadd(ks.campaigns_due(0), {campaign_id: 4_102_444_800_000})  # 2100
    assert (await client.post(f"/api/v1/campaigns/{campaign_id}/start", headers=auth(settings))).status_code == 202
    assert await redis.zcard(ks.campaigns_due(0)) == 0
    assert await redis.sismember(ks.campaigns_running(0), campaign_id)  # type: ignore[misc]


async def test_the_sweep_waits_for_a_just_assigned_task_and_never_fails_a_reassigned_recipient(
    settings: Settings, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(coordinator_campaigns, "STALL_S", 0.3)
    ks = Keyspace.of(settings)
    campaign_id, ids = await draft_campaign(redis, settings, "alice", ["a@example.com"])
    await redis.hset(
        ks.campaign(campaign_id), mapping={"status": "running", "pending": 1, "sent": 0, "failed": 0, "skipped": 0}
    )  # type: ignore[misc]
    await redis.hset(ks.campaign_ledger(campaign_id), ids[0], "pending:t-not-yet-submitted")  # type: ignore[misc]
    await redis.sadd(ks.campaigns_running(0), campaign_id)  # type: ignore[misc]
    sweeper = StalledSends(redis, ks)
    assert await sweeper.sweep(0, "leader") == 0  # progress noted
    await asyncio.sleep(0.35)
    assert await sweeper.sweep(0, "leader") == 0  # stalled, but the marker was only now found missing
    # Meanwhile a resume gave the recipient to another task: the old view must not fail it.
    await redis.hset(ks.campaign_ledger(campaign_id), ids[0], "pending:t-new")  # type: ignore[misc]
    await redis.hset(ks.task_marker("t-new"), "state", "pending")  # type: ignore[misc]
    await asyncio.sleep(0.35)
    assert await sweeper.sweep(0, "leader") == 0
    assert await redis.hget(ks.campaign_ledger(campaign_id), ids[0]) == "pending:t-new"  # type: ignore[misc]


async def test_a_refused_submit_does_not_keep_the_later_slices_from_being_submitted(
    settings: Settings, redis: Redis, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    ks = Keyspace.of(settings)
    campaign_id, ids = await draft_campaign(redis, settings, "alice", [f"u{i}@example.com" for i in range(5)])
    monkeypatch.setattr(control, "SUBMIT_SLICE", 2)
    # The second recipient's task marker is not a hash: its submit is refused (WRONGTYPE).
    broken = control.send_task_id(campaign_id, ids[1], 0)
    await redis.set(ks.task_marker(broken), "not a marker")
    # Started by the coordinator, as a scheduled campaign is.
    await redis.zadd(ks.campaigns_due(ks.partition_of(campaign_id)), {campaign_id: 0})
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await coordinator_campaigns.DueCampaigns(settings, redis, pool, ks).start_due(
            ks.partition_of(campaign_id), "leader"
        )
    # The slices after the refused one were submitted all the same.
    assert set(await _send_tasks(redis, settings, campaign_id)) == set(ids) - {ids[1]}
