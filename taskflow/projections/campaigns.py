"""The campaigns projection as pure folds: the ``campaigns`` row and its
``email_recipients`` (the per-recipient ledger) from the campaign's events.

A recipient's fate needs nothing stored to be written (its new status, time, task and
error are all in the event), and a campaign's counters move by one per ledger event
(the ledger appends each fate exactly once, in the same step as its Redis change). So
nothing is read back: a row created in the batch is changed in memory; a row stored
before the batch gets an *update* (absolute values plus counter deltas) that the store
applies in SQL, in batch order, inside the batch's transaction. The checkpoint makes
every event apply once, so the counters stay exact (ARCHITECTURE invariant 4), and a
rebuild (every row in memory) gives the same rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import assert_never
from uuid import UUID

import msgspec

from taskflow.events import (
    CampaignCompleted,
    CampaignCreated,
    CampaignPaused,
    CampaignResumed,
    CampaignStarted,
    FailedResent,
    RecipientFailed,
    RecipientsAdded,
    RecipientSent,
    RecipientSkipped,
    RecipientUnsubscribed,
)
from taskflow.projections.ids import as_uuid, uuid_or_none
from taskflow.projections.rows import CampaignRow, RecipientRow

CampaignEvent = (
    CampaignCreated
    | RecipientsAdded
    | CampaignStarted
    | CampaignPaused
    | CampaignResumed
    | FailedResent
    | RecipientSent
    | RecipientFailed
    | RecipientSkipped
    | RecipientUnsubscribed
    | CampaignCompleted
)
_encoder = msgspec.json.Encoder()


class CampaignUpdate(msgspec.Struct, kw_only=True, gc=False):
    """A change to a campaign row stored before the batch: None keeps the stored value."""

    campaign_id: UUID
    status: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    sent_delta: int = 0
    failed_delta: int = 0


class RecipientUpdate(msgspec.Struct, kw_only=True, gc=False):
    """A recipient's new state. ``sent_at`` and ``task_id`` None keep the stored ones;
    the errors replace the stored ones when ``clear_errors``, else None keeps them."""

    recipient_id: UUID
    status: str
    sent_at: datetime | None = None
    task_id: UUID | None = None
    error_message: str | None = None
    bounce_reason: str | None = None
    clear_errors: bool = False


class CampaignChanges(msgspec.Struct, kw_only=True):
    """The campaign rows of a batch: rows new in it, and updates of stored ones."""

    campaigns: dict[UUID, CampaignRow] = msgspec.field(default_factory=dict)
    recipients: dict[UUID, RecipientRow] = msgspec.field(default_factory=dict)
    campaign_updates: dict[UUID, CampaignUpdate] = msgspec.field(default_factory=dict)
    recipient_updates: dict[UUID, RecipientUpdate] = msgspec.field(default_factory=dict)


def fold_campaign(changes: CampaignChanges, event: CampaignEvent) -> None:
    campaign_id = as_uuid(event.aggregate_id)
    match event:
        case CampaignCreated():
            changes.campaigns.setdefault(campaign_id, _created(campaign_id, event))
        case RecipientsAdded():
            for r in event.recipients:
                row = _added(campaign_id, r.recipient_id, r.email, r.name, r.fields)
                changes.recipients.setdefault(row.recipient_id, row)
        case CampaignStarted() | CampaignPaused() | CampaignResumed() | CampaignCompleted():
            _campaign(changes, status_update(campaign_id, event))
        case RecipientSent() | RecipientFailed() | RecipientSkipped() | RecipientUnsubscribed():
            _recipient(changes, recipient_update(event))
            sent, failed = int(isinstance(event, RecipientSent)), int(isinstance(event, RecipientFailed))
            if sent or failed:
                _campaign(changes, CampaignUpdate(campaign_id=campaign_id, sent_delta=sent, failed_delta=failed))
        case FailedResent():
            for recipient in event.recipients:
                _recipient(
                    changes, RecipientUpdate(recipient_id=as_uuid(recipient), status="PENDING", clear_errors=True)
                )
            # Only FAILED recipients are resent (never BOUNCED ones): each leaves the count,
            # and the campaign runs again (a completed one too; its next completion sets
            # completed_at anew).
            _campaign(
                changes, CampaignUpdate(campaign_id=campaign_id, status="RUNNING", failed_delta=-len(event.recipients))
            )
        case _:
            assert_never(event)


def status_update(
    campaign_id: UUID, event: CampaignStarted | CampaignPaused | CampaignResumed | CampaignCompleted
) -> CampaignUpdate:
    match event:
        case CampaignStarted():
            return CampaignUpdate(campaign_id=campaign_id, status="RUNNING", started_at=event.occurred_at)
        case CampaignPaused():
            return CampaignUpdate(campaign_id=campaign_id, status="PAUSED")
        case CampaignResumed():
            return CampaignUpdate(campaign_id=campaign_id, status="RUNNING")
        case CampaignCompleted():
            return CampaignUpdate(campaign_id=campaign_id, status="COMPLETED", completed_at=event.occurred_at)
        case _:
            assert_never(event)


def recipient_update(
    event: RecipientSent | RecipientFailed | RecipientSkipped | RecipientUnsubscribed,
) -> RecipientUpdate:
    recipient_id = as_uuid(event.recipient_id)
    match event:
        case RecipientSent():
            return RecipientUpdate(
                recipient_id=recipient_id,
                status="SENT",
                sent_at=event.occurred_at,
                task_id=uuid_or_none(event.task_id),
                clear_errors=True,
            )
        case RecipientFailed():
            error = f"{event.smtp_code} {event.error}" if event.smtp_code is not None else event.error
            return RecipientUpdate(
                recipient_id=recipient_id,
                status="BOUNCED" if event.bounced else "FAILED",
                task_id=uuid_or_none(event.task_id),
                error_message=error,
                bounce_reason=error if event.bounced else None,
                clear_errors=True,
            )
        case RecipientSkipped():
            return RecipientUpdate(
                recipient_id=recipient_id,
                status="SKIPPED",
                task_id=uuid_or_none(event.task_id),
                error_message=f"skipped: {event.reason}",
                clear_errors=True,
            )
        case RecipientUnsubscribed():
            # Often after SENT (the link is in the message): sent_at and task stay.
            return RecipientUpdate(recipient_id=recipient_id, status="UNSUBSCRIBED")
        case _:
            assert_never(event)


def _campaign(changes: CampaignChanges, update: CampaignUpdate) -> None:
    row = changes.campaigns.get(update.campaign_id)
    if row is not None:
        changes.campaigns[update.campaign_id] = applied_to_campaign(row, update)
    else:
        old = changes.campaign_updates.get(update.campaign_id)
        changes.campaign_updates[update.campaign_id] = update if old is None else merged_campaign(old, update)


def _recipient(changes: CampaignChanges, update: RecipientUpdate) -> None:
    row = changes.recipients.get(update.recipient_id)
    if row is not None:
        changes.recipients[update.recipient_id] = applied_to_recipient(row, update)
    else:
        old = changes.recipient_updates.get(update.recipient_id)
        changes.recipient_updates[update.recipient_id] = update if old is None else merged_recipient(old, update)


def applied_to_campaign(row: CampaignRow, u: CampaignUpdate) -> CampaignRow:
    """What the store's UPDATE does to a stored row (``store.update_campaigns``)."""
    return msgspec.structs.replace(
        row,
        status=u.status or row.status,
        started_at=u.started_at or row.started_at,
        completed_at=u.completed_at or row.completed_at,
        sent_count=row.sent_count + u.sent_delta,
        failed_count=row.failed_count + u.failed_delta,
    )


def merged_campaign(old: CampaignUpdate, new: CampaignUpdate) -> CampaignUpdate:
    """Two updates of one batch as one: applying it equals applying both in order."""
    return CampaignUpdate(
        campaign_id=new.campaign_id,
        status=new.status or old.status,
        started_at=new.started_at or old.started_at,
        completed_at=new.completed_at or old.completed_at,
        sent_delta=old.sent_delta + new.sent_delta,
        failed_delta=old.failed_delta + new.failed_delta,
    )


def applied_to_recipient(row: RecipientRow, u: RecipientUpdate) -> RecipientRow:
    """What the store's UPDATE does to a stored row (``store.update_recipients``)."""
    return msgspec.structs.replace(
        row,
        status=u.status,
        sent_at=u.sent_at or row.sent_at,
        task_id=u.task_id or row.task_id,
        error_message=u.error_message if u.clear_errors else (u.error_message or row.error_message),
        bounce_reason=u.bounce_reason if u.clear_errors else (u.bounce_reason or row.bounce_reason),
    )


def merged_recipient(old: RecipientUpdate, new: RecipientUpdate) -> RecipientUpdate:
    if new.clear_errors:
        errors = (new.error_message, new.bounce_reason)
    else:
        errors = (new.error_message or old.error_message, new.bounce_reason or old.bounce_reason)
    return RecipientUpdate(
        recipient_id=new.recipient_id,
        status=new.status,
        sent_at=new.sent_at or old.sent_at,
        task_id=new.task_id or old.task_id,
        error_message=errors[0],
        bounce_reason=errors[1],
        clear_errors=new.clear_errors or old.clear_errors,
    )


def _created(campaign_id: UUID, event: CampaignCreated) -> CampaignRow:
    return CampaignRow(
        campaign_id=campaign_id,
        name=event.name,
        status="SCHEDULED" if event.scheduled_at is not None else "DRAFT",
        template_subject=event.template_subject,
        template_body=event.template_body,
        template_variables=_encoder.encode(event.template_variables).decode(),
        total_recipients=event.total_recipients,
        sent_count=0,
        failed_count=0,
        created_at=event.occurred_at,
        scheduled_at=event.scheduled_at,
        started_at=None,
        completed_at=None,
        created_by=event.actor,
        rate_limit_per_minute=event.rate_limit_per_minute,
    )


def _added(campaign_id: UUID, recipient_id: str, email: str, name: str, fields: dict[str, str]) -> RecipientRow:
    return RecipientRow(
        recipient_id=as_uuid(recipient_id),
        campaign_id=campaign_id,
        email=email,
        status="PENDING",
        # ``name`` beside the fields: no field may be called so (campaigns.intake).
        personalization=_encoder.encode({**fields, "name": name}).decode(),
        sent_at=None,
        task_id=None,
        error_message=None,
        bounce_reason=None,
    )
