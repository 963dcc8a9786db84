"""The campaigns projection folds the ledger events into exact rows and counters, whether
the rows are in the batch (in memory) or stored before it (updates applied by SQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

import asyncpg

from taskflow.events import (
    AnyEvent,
    CampaignCompleted,
    CampaignCreated,
    CampaignRecipient,
    CampaignStarted,
    FailedResent,
    RecipientFailed,
    RecipientsAdded,
    RecipientSent,
    RecipientUnsubscribed,
)
from taskflow.projections import store
from taskflow.projections.batch import fold_batch

CAMPAIGN = str(uuid4())
PEOPLE = [CampaignRecipient(recipient_id=str(uuid4()), email=f"p{i}@example.com", name=f"P{i}") for i in range(5)]
TASK = str(uuid4())


def _env(n: int) -> dict[str, object]:
    return {
        "aggregate_id": CAMPAIGN,
        "occurred_at": datetime(2025, 1, 1, 0, 0, n, tzinfo=UTC),
        "correlation_id": CAMPAIGN,
        "event_id": f"{n}-0",
        "actor": "alice",
    }


def _history() -> tuple[list[AnyEvent], list[AnyEvent]]:
    p = [r.recipient_id for r in PEOPLE]
    created: list[AnyEvent] = [
        CampaignCreated(**_env(1), name="n", template_subject="s", template_body="b", total_recipients=5),  # type: ignore[arg-type]
        RecipientsAdded(**_env(2), recipients=tuple(PEOPLE)),  # type: ignore[arg-type]
    ]
    ledger: list[AnyEvent] = [
        CampaignStarted(**_env(3), send_tasks=5),  # type: ignore[arg-type]
        RecipientSent(**_env(4), recipient_id=p[0], task_id=TASK, message_id="<m>"),  # type: ignore[arg-type]
        RecipientFailed(**_env(5), recipient_id=p[1], task_id=TASK, error="mailbox full", smtp_code=452),  # type: ignore[arg-type]
        RecipientFailed(**_env(6), recipient_id=p[2], task_id=TASK, error="no such user", smtp_code=550, bounced=True),  # type: ignore[arg-type]
        RecipientUnsubscribed(**_env(7), recipient_id=p[0], email="p0@example.com"),  # type: ignore[arg-type]
        FailedResent(**_env(8), recipients=(p[1],)),  # type: ignore[arg-type]
        RecipientSent(**_env(9), recipient_id=p[1], task_id=TASK, message_id="<m>"),  # type: ignore[arg-type]
        RecipientSent(**_env(10), recipient_id=p[3], task_id=TASK, message_id="<m>"),  # type: ignore[arg-type]
        RecipientSent(**_env(11), recipient_id=p[4], task_id=TASK, message_id="<m>"),  # type: ignore[arg-type]
        CampaignCompleted(**_env(12), sent=4, failed=1, skipped=0),  # type: ignore[arg-type]
    ]
    return created, ledger


EXPECTED = {
    0: ("UNSUBSCRIBED", None, None),
    1: ("SENT", None, None),
    2: ("BOUNCED", "550 no such user", "550 no such user"),
    3: ("SENT", None, None),
    4: ("SENT", None, None),
}


def _check(campaign: tuple[str, int, int], recipients: dict[UUID, tuple[str, str | None, str | None]]) -> None:
    assert campaign == ("COMPLETED", 4, 1)
    assert recipients == {UUID(PEOPLE[i].recipient_id): v for i, v in EXPECTED.items()}


def test_the_ledger_events_folded_in_one_batch_give_exact_rows_and_counters() -> None:
    created, ledger = _history()
    changes = fold_batch(created + ledger, {}, {}).campaigns
    assert not changes.campaign_updates and not changes.recipient_updates
    (row,) = changes.campaigns.values()
    _check(
        (row.status, row.sent_count, row.failed_count),
        {r.recipient_id: (r.status, r.error_message, r.bounce_reason) for r in changes.recipients.values()},
    )
    assert row.started_at is not None and row.completed_at is not None and row.created_by == "alice"


async def test_the_same_events_folded_one_batch_each_give_the_same_stored_rows(pool: asyncpg.Pool) -> None:
    created, ledger = _history()
    async with pool.acquire() as conn:
        for event in [*created, *ledger]:
            async with conn.transaction():
                await store.write_changes(conn, fold_batch([event], {}, {}))
        row = await conn.fetchrow("SELECT status, sent_count, failed_count, started_at FROM campaigns")
        recipients = await conn.fetch(
            "SELECT recipient_id, status, error_message, bounce_reason, sent_at FROM email_recipients"
        )
    assert row is not None and row["started_at"] is not None
    _check(
        (row["status"], row["sent_count"], row["failed_count"]),
        {r["recipient_id"]: (r["status"], r["error_message"], r["bounce_reason"]) for r in recipients},
    )
    # An unsubscribe after the send keeps when it was sent.
    assert next(r for r in recipients if str(r["recipient_id"]) == PEOPLE[0].recipient_id)["sent_at"] is not None
