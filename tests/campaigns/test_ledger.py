"""The ledger scripts on real Redis: who may be mailed, exactly-once counters, the
completion event, and the shared send rate."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest
from redis.asyncio import Redis

from taskflow.campaigns.ids import normalised, recipient_id
from taskflow.campaigns.ledger import Admission, CampaignLedger, Outcome, RecipientEvent
from taskflow.events import CampaignCompleted, RecipientFailed, RecipientSent, RecipientSkipped
from taskflow.settings import Settings
from taskflow.streams.keyspace import Keyspace
from tests.support.campaigns import Recipient, counters_of, ledger_of, seed_campaign
from tests.support.stack import all_events

A, B = Recipient("a@example.com", "A"), Recipient("b@example.com", "B")
NOW_MS = 1_000_000


async def _begin(
    ledger: CampaignLedger,
    campaign_id: str,
    rid: str,
    task_id: str = "t1",
    *,
    now_ms: int = NOW_MS,
    max_wait_ms: int = 10_000,
) -> Admission:
    return await ledger.begin_send(
        campaign_id, rid, task_id, owner="alice", email=A.email, now_ms=now_ms, max_wait_ms=max_wait_ms
    )


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
    assert (await _begin(ledger, campaign_id, rid)).answer == answer
    expected = "sending:t1" if answer == "go" else state
    assert (await ledger_of(redis, settings, campaign_id))[rid] == expected


async def test_begin_send_knows_no_recipient_outside_the_ledger(
    redis: Redis, settings: Settings, ledger: CampaignLedger
) -> None:
    campaign_id = await seed_campaign(redis, settings, [A])
    assert (await _begin(ledger, campaign_id, recipient_id(campaign_id, B.email))).answer == "unknown"
    assert (await _begin(ledger, "no-such-campaign", recipient_id(campaign_id, A.email))).answer == "unknown"


async def test_begin_send_reads_the_owners_suppression_list_after_the_claim(
    redis: Redis, settings: Settings, ledger: CampaignLedger
) -> None:
    campaign_id = await seed_campaign(redis, settings, [A], owner="alice")
    rid = recipient_id(campaign_id, A.email)
    await redis.sadd(Keyspace.of(settings).suppressed("alice"), normalised(" A@Example.com "))
    await redis.hset(Keyspace.of(settings).campaign_ledger(campaign_id), rid, "pending:t1")
    assert await _begin(ledger, campaign_id, rid) == Admission("go", 0, suppressed=True)
    assert (await ledger_of(redis, settings, campaign_id))[rid] == "sending:t1"


async def test_begin_send_loads_its_script_again_when_the_server_lost_it(
    redis: Redis, settings: Settings, ledger: CampaignLedger
) -> None:
    campaign_id = await seed_campaign(redis, settings, [A])
    rid = recipient_id(campaign_id, A.email)
    await redis.hset(Keyspace.of(settings).campaign_ledger(campaign_id), rid, "pending:t1")
    ledger._begin_send.sha = "0" * 40  # a script this server has never seen (a restart, SCRIPT FLUSH)
    assert (await _begin(ledger, campaign_id, rid)).answer == "go"


async def test_record_loads_its_script_again_when_the_server_lost_it(
    redis: Redis, settings: Settings, ledger: CampaignLedger
) -> None:
    campaign_id = await seed_campaign(redis, settings, [A, B])
    rid = recipient_id(campaign_id, A.email)
    ledger._record.sha = "0" * 40
    assert (await ledger.record(campaign_id, rid, "sent", _event(campaign_id, A.email, "sent"))).outcome == "recorded"
    assert (await counters_of(redis, settings, campaign_id))["sent"] == "1"


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


async def _go(
    redis: Redis, settings: Settings, ledger: CampaignLedger, campaign_id: str, *, now_ms: int, max_wait_ms: int
) -> int:
    """One go of recipient A, assigned to a new task each time (not what a campaign does,
    but the rate is the campaign's, not the recipient's); its wait."""
    task = str(uuid4())
    await redis.hset(
        Keyspace.of(settings).campaign_ledger(campaign_id), recipient_id(campaign_id, A.email), f"pending:{task}"
    )
    admission = await _begin(
        ledger, campaign_id, recipient_id(campaign_id, A.email), task, now_ms=now_ms, max_wait_ms=max_wait_ms
    )
    assert admission.answer == "go"
    return admission.wait_ms


async def test_each_go_reserves_a_distinct_slot_of_the_campaign_rate(
    redis: Redis, settings: Settings, ledger: CampaignLedger
) -> None:
    campaign_id = await seed_campaign(redis, settings, [A], rate_limit_per_minute=120)  # one per 500 ms
    waits = [await _go(redis, settings, ledger, campaign_id, now_ms=NOW_MS, max_wait_ms=10_000) for _ in range(4)]
    assert waits == [0, 500, 1000, 1500]
    assert await _go(redis, settings, ledger, campaign_id, now_ms=NOW_MS + 2000, max_wait_ms=0) == 0


async def test_a_slot_further_off_than_the_longest_wait_is_later_and_neither_claims_nor_reserves(
    redis: Redis, settings: Settings, ledger: CampaignLedger
) -> None:
    people = [Recipient(f"p{i}@example.com") for i in range(10)]
    campaign_id = await seed_campaign(redis, settings, [A, *people], rate_limit_per_minute=120)  # 500 ms apart
    for _ in range(4):
        await _go(redis, settings, ledger, campaign_id, now_ms=NOW_MS, max_wait_ms=10_000)
    rid = recipient_id(campaign_id, A.email)
    await redis.hset(Keyspace.of(settings).campaign_ledger(campaign_id), rid, "pending:t9")
    later = await _begin(ledger, campaign_id, rid, "t9", now_ms=NOW_MS, max_wait_ms=1_000)
    # The next free slot is 2 s off: t9 is told to come back for it.
    assert (later.answer, later.wait_ms) == ("later", 2000)
    # Still only assigned, so a pause can take the recipient back; the slot is still free.
    assert (await ledger_of(redis, settings, campaign_id))[rid] == "pending:t9"
    assert await _go(redis, settings, ledger, campaign_id, now_ms=NOW_MS, max_wait_ms=10_000) == 2000


async def test_each_later_is_told_a_slot_of_its_own_until_a_campaign_action(
    redis: Redis, settings: Settings, ledger: CampaignLedger
) -> None:
    people = [Recipient(f"p{i}@example.com") for i in range(6)]
    campaign_id = await seed_campaign(redis, settings, people, rate_limit_per_minute=120)  # 500 ms apart
    rids = [recipient_id(campaign_id, p.email) for p in people]
    ledger_key = Keyspace.of(settings).campaign_ledger(campaign_id)
    for n, rid in enumerate(rids):
        await redis.hset(ledger_key, rid, f"pending:t{n}")
    answers = [await _begin(ledger, campaign_id, rid, f"t{n}", max_wait_ms=600) for n, rid in enumerate(rids)]
    # Two gos reserve 0 and 500 ms; the waiting ones are told 1,000, 1,500, 2,000, 2,500 ms:
    # they come back one per slot, in turn, instead of all at the next free one.
    assert [(a.answer, a.wait_ms) for a in answers] == [
        ("go", 0),
        ("go", 500),
        ("later", 1000),
        ("later", 1500),
        ("later", 2000),
        ("later", 2500),
    ]
    # Told slots are not reserved: the first to come back takes the next free slot.
    assert (await _begin(ledger, campaign_id, rids[5], "t5", now_ms=NOW_MS + 500, max_wait_ms=600)).wait_ms == 500
    # A pause (any campaign action) forgets the told slots: the next later starts afresh.
    await redis.hdel(Keyspace.of(settings).campaign(campaign_id), "deferred_until")  # as campaign_control.lua does
    assert (await _begin(ledger, campaign_id, rids[2], "t2", max_wait_ms=600)).wait_ms == 1500


async def test_an_answer_other_than_go_reserves_no_slot(
    redis: Redis, settings: Settings, ledger: CampaignLedger
) -> None:
    campaign_id = await seed_campaign(redis, settings, [A], rate_limit_per_minute=60)
    rid = recipient_id(campaign_id, A.email)
    await redis.hset(Keyspace.of(settings).campaign_ledger(campaign_id), rid, "pending:t2")
    assert (await _begin(ledger, campaign_id, rid)).answer == "superseded"
    assert await _go(redis, settings, ledger, campaign_id, now_ms=NOW_MS, max_wait_ms=10_000) == 0


async def test_the_rate_state_outlives_a_pause(redis: Redis, settings: Settings, ledger: CampaignLedger) -> None:
    campaign_id = await seed_campaign(redis, settings, [A], rate_limit_per_minute=60)
    now = 2_000_000
    assert await _go(redis, settings, ledger, campaign_id, now_ms=now, max_wait_ms=10_000) == 0
    await redis.hset(Keyspace.of(settings).campaign(campaign_id), "status", "paused")
    await redis.hset(Keyspace.of(settings).campaign(campaign_id), "status", "running")
    assert await _go(redis, settings, ledger, campaign_id, now_ms=now + 100, max_wait_ms=10_000) == 900
