"""The ledger scripts on real Redis: who may be mailed, exactly-once counters, the
completion event, and the shared send rate."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from taskflow.campaigns.ids import recipient_id
from taskflow.campaigns.ledger import CampaignLedger, Outcome, RecipientEvent
from taskflow.events import CampaignCompleted, RecipientFailed, RecipientSent, RecipientSkipped
from taskflow.settings import Settings
from taskflow.streams.keyspace import Keyspace
from tests.support.campaigns import Recipient, counters_of, ledger_of, seed_campaign
from tests.support.stack import all_events

A, B = Recipient("a@example.com", "A"), Recipient("b@example.com", "B")


@pytest.fixture
def ledger(redis: Redis, settings: Settings) -> CampaignLedger:
    return CampaignLedger(redis, Keyspace.of(settings))


def _event(campaign_id: str, email: str, outcome: Outcome) -> RecipientEvent:
    envelope = {"aggregate_id": campaign_id, "occurred_at": datetime.now(UTC), "correlation_id": campaign_id}
    rid = recipient_id(campaign_id, email)
    if outcome == "sent":
        return RecipientSent(**envelope, recipient_id=rid, task_id="t1", message_id="<m@x>")  # type: ignore[arg-type]
    if outcome in ("failed", "bounced"):
        return RecipientFailed(**envelope, recipient_id=rid, task_id="t1", error="550 no", bounced=outcome == "bounced")  # type: ignore[arg-type]
    return RecipientSkipped(**envelope, recipient_id=rid, reason="suppressed")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "state", "answer"),
    [
        ("running", "pending:t1", "go"),
        # t1's own earlier attempt died mid-send: it goes again (the same Message-ID).
        ("running", "sending:t1", "go"),
        # Another task has the recipient, or a pause took it back: never two mailers.
        ("running", "pending:t2", "superseded"),
        ("running", "sending:t2", "superseded"),
        ("running", "pending", "superseded"),
        ("paused", "pending", "superseded"),
        ("running", "sent", "done"),
        ("running", "failed", "done"),
        ("running", "bounced", "done"),
        ("running", "skipped", "done"),
        ("running", "unsubscribed", "done"),
        ("paused", "pending:t1", "paused"),
        ("draft", "pending:t1", "paused"),
        ("scheduled", "pending:t1", "paused"),
        ("paused", "sent", "done"),
        ("completed", "pending:t1", "done"),
    ],
)
async def test_begin_send_answers_by_campaign_status_and_recipient_state(
    redis: Redis, settings: Settings, ledger: CampaignLedger, status: str, state: str, answer: str
) -> None:
    campaign_id = await seed_campaign(redis, settings, [A], status=status)
    rid = recipient_id(campaign_id, A.email)
    await redis.hset(Keyspace.of(settings).campaign_ledger(campaign_id), rid, state)
    assert await ledger.begin_send(campaign_id, rid, "t1") == answer
    expected = "sending:t1" if answer == "go" else state
    assert (await ledger_of(redis, settings, campaign_id))[rid] == expected


async def test_begin_send_knows_no_recipient_outside_the_ledger(
    redis: Redis, settings: Settings, ledger: CampaignLedger
) -> None:
    campaign_id = await seed_campaign(redis, settings, [A])
    assert await ledger.begin_send(campaign_id, recipient_id(campaign_id, B.email), "t1") == "unknown"
    assert await ledger.begin_send("no-such-campaign", recipient_id(campaign_id, A.email), "t1") == "unknown"


@pytest.mark.parametrize(
    ("outcome", "counter"), [("sent", "sent"), ("failed", "failed"), ("bounced", "failed"), ("skipped", "skipped")]
)
async def test_record_moves_the_counters_exactly_once(
    redis: Redis, settings: Settings, ledger: CampaignLedger, outcome: Outcome, counter: str
) -> None:
    campaign_id = await seed_campaign(redis, settings, [A, B])
    rid = recipient_id(campaign_id, A.email)
    first = await ledger.record(campaign_id, rid, outcome, _event(campaign_id, A.email, outcome))
    again = await ledger.record(campaign_id, rid, "sent", _event(campaign_id, A.email, "sent"))
    assert first.outcome == "recorded" and first.event_id and not first.completed_id
    assert again.outcome == "already" and again.state == outcome
    counters = await counters_of(redis, settings, campaign_id)
    assert counters["pending"] == "1" and counters[counter] == "1"
    assert sum(int(counters[k]) for k in ("sent", "failed", "skipped")) == 1
    assert (await ledger_of(redis, settings, campaign_id))[rid] == outcome
    assert len(await all_events(redis, settings)) == 1


async def test_the_last_recipient_completes_a_running_campaign_once(
    redis: Redis, settings: Settings, ledger: CampaignLedger
) -> None:
    campaign_id = await seed_campaign(redis, settings, [A, B])
    await ledger.record(campaign_id, recipient_id(campaign_id, A.email), "sent", _event(campaign_id, A.email, "sent"))
    last = await ledger.record(
        campaign_id, recipient_id(campaign_id, B.email), "bounced", _event(campaign_id, B.email, "bounced")
    )
    assert last.completed_id
    await ledger.record(campaign_id, recipient_id(campaign_id, B.email), "sent", _event(campaign_id, B.email, "sent"))
    completed = [e for e in await all_events(redis, settings) if isinstance(e, CampaignCompleted)]
    assert [(e.aggregate_id, e.sent, e.failed, e.skipped) for e in completed] == [(campaign_id, 1, 1, 0)]
    assert completed[0].event_id == last.completed_id
    assert (await counters_of(redis, settings, campaign_id))["status"] == "completed"


async def test_a_paused_campaign_is_not_completed_by_its_last_recipient(
    redis: Redis, settings: Settings, ledger: CampaignLedger
) -> None:
    campaign_id = await seed_campaign(redis, settings, [A], status="paused")
    recorded = await ledger.record(
        campaign_id, recipient_id(campaign_id, A.email), "sent", _event(campaign_id, A.email, "sent")
    )
    assert recorded.outcome == "recorded" and not recorded.completed_id
    assert (await counters_of(redis, settings, campaign_id))["status"] == "paused"


async def test_an_unsubscribe_after_the_send_is_recorded_without_moving_the_counters(
    redis: Redis, settings: Settings, ledger: CampaignLedger
) -> None:
    campaign_id = await seed_campaign(redis, settings, [A, B])
    rid = recipient_id(campaign_id, A.email)
    await ledger.record(campaign_id, rid, "sent", _event(campaign_id, A.email, "sent"))
    unsubscribed = await ledger.record(campaign_id, rid, "unsubscribed", _event(campaign_id, A.email, "skipped"))
    twice = await ledger.record(campaign_id, rid, "unsubscribed", _event(campaign_id, A.email, "skipped"))
    assert unsubscribed.outcome == "recorded" and twice.outcome == "already"
    counters = await counters_of(redis, settings, campaign_id)
    assert (counters["pending"], counters["sent"], counters["skipped"]) == ("1", "1", "0")
    assert (await ledger_of(redis, settings, campaign_id))[rid] == "unsubscribed"


async def test_acquire_rate_gives_concurrent_callers_distinct_slots(
    redis: Redis, settings: Settings, ledger: CampaignLedger
) -> None:
    campaign_id = await seed_campaign(redis, settings, [A], rate_limit_per_minute=120)  # one per 500 ms
    now = 1_000_000
    waits = [await ledger.acquire_rate(campaign_id, now, max_wait_ms=10_000) for _ in range(4)]
    assert waits == [0, 500, 1000, 1500]
    # Past the longest wait: nothing reserved, minus the wait answered.
    assert await ledger.acquire_rate(campaign_id, now, max_wait_ms=1_000) == -2000
    assert await ledger.acquire_rate(campaign_id, now + 2000, max_wait_ms=0) == 0


async def test_the_rate_state_outlives_a_pause(redis: Redis, settings: Settings, ledger: CampaignLedger) -> None:
    campaign_id = await seed_campaign(redis, settings, [A], rate_limit_per_minute=60)
    now = 2_000_000
    assert await ledger.acquire_rate(campaign_id, now, max_wait_ms=10_000) == 0
    await redis.hset(Keyspace.of(settings).campaign(campaign_id), "status", "paused")
    await redis.hset(Keyspace.of(settings).campaign(campaign_id), "status", "running")
    assert await ledger.acquire_rate(campaign_id, now + 100, max_wait_ms=10_000) == 900
