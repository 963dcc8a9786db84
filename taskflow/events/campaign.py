"""Events of the campaign aggregate (aggregate_id = campaign_id).

The campaign owns its per-recipient ledger: every recipient's fate (sent, failed,
skipped, unsubscribed) is an event of the campaign, appended in the campaign's own
stream in the same step as the ledger change in Redis. The ``send_email`` tasks that do
the sending are only the vehicle: their own task events say how each attempt ran, the
campaign's say what happened to each recipient, exactly once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from taskflow.events.base import Event

RecipientStatus = Literal["PENDING", "SENT", "FAILED", "BOUNCED", "UNSUBSCRIBED", "SKIPPED"]
CampaignStatus = Literal["DRAFT", "SCHEDULED", "RUNNING", "PAUSED", "COMPLETED"]


class CampaignRecipient(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One row of a campaign's audience. ``recipient_id`` is derived from the campaign
    and the normalised address (``campaigns.ids.recipient_id``), so the same address
    is one recipient however often it is listed."""

    recipient_id: str
    email: str
    name: str = ""
    # Personalisation: every other column of the CSV (or field of the JSON row).
    fields: dict[str, str] = {}


class CampaignCreated(Event, frozen=True, kw_only=True, tag="campaign.created"):
    """A campaign and its templates; its recipients follow in RecipientsAdded chunks.
    ``actor`` is its owner (JWT subject): only they (and admins) see it."""

    name: str
    template_subject: str
    # HTML; the text part is ``template_text`` when given, else generated from the HTML.
    template_body: str
    template_text: str | None = None
    # Campaign-wide values every recipient's own fields override.
    template_variables: dict[str, str] = {}
    scheduled_at: datetime | None = None
    rate_limit_per_minute: int = 100
    # Recipients accepted at creation (the sum of the RecipientsAdded chunks).
    total_recipients: int = 0


class RecipientsAdded(Event, frozen=True, kw_only=True, tag="campaign.recipients_added"):
    """A chunk of at most ``MAX_CHUNK`` recipients, in the order they were given."""

    recipients: tuple[CampaignRecipient, ...]


MAX_CHUNK = 1_000


class CampaignStarted(Event, frozen=True, kw_only=True, tag="campaign.started"):
    """DRAFT or SCHEDULED -> RUNNING: one send task per pending recipient was created."""

    send_tasks: int


class CampaignPaused(Event, frozen=True, kw_only=True, tag="campaign.paused"):
    """RUNNING -> PAUSED: no new send starts; sends already talking to the server finish."""

    reason: str = ""


class CampaignResumed(Event, frozen=True, kw_only=True, tag="campaign.resumed"):
    """PAUSED -> RUNNING: the recipients still pending are sent, none twice."""

    reason: str = ""
    send_tasks: int = 0


class FailedResent(Event, frozen=True, kw_only=True, tag="campaign.failed_resent"):
    """The FAILED recipients (not the BOUNCED or unsubscribed ones) were put back to
    PENDING and a send task created for each."""

    recipients: tuple[str, ...]


class RecipientSent(Event, frozen=True, kw_only=True, tag="campaign.recipient_sent"):
    """The SMTP server accepted the message for this recipient."""

    recipient_id: str
    task_id: str
    message_id: str


class RecipientFailed(Event, frozen=True, kw_only=True, tag="campaign.recipient_failed"):
    """The recipient will not get the message: a permanent refusal (SMTP 5xx: ``bounced``)
    or a temporary one that outlived its retries."""

    recipient_id: str
    task_id: str
    error: str
    smtp_code: int | None = None
    bounced: bool = False


class RecipientSkipped(Event, frozen=True, kw_only=True, tag="campaign.recipient_skipped"):
    """Not sent, on purpose: the address unsubscribed (here or from an earlier campaign
    of the same owner: the suppression list)."""

    recipient_id: str
    reason: Literal["unsubscribed", "suppressed"]
    task_id: str | None = None


class RecipientUnsubscribed(Event, frozen=True, kw_only=True, tag="campaign.recipient_unsubscribed"):
    """The recipient used the unsubscribe link (RFC 8058 one-click, or the page): the
    rest of this campaign and the owner's later campaigns skip the address."""

    recipient_id: str
    email: str
    # "one-click" (POST by the mailbox provider) or "page" (the confirmation page).
    via: Literal["one-click", "page"] = "one-click"


class CampaignCompleted(Event, frozen=True, kw_only=True, tag="campaign.completed"):
    """Every recipient reached a final state."""

    sent: int
    failed: int
    skipped: int


CAMPAIGN_EVENTS = (
    CampaignCreated,
    RecipientsAdded,
    CampaignStarted,
    CampaignPaused,
    CampaignResumed,
    FailedResent,
    RecipientSent,
    RecipientFailed,
    RecipientSkipped,
    RecipientUnsubscribed,
    CampaignCompleted,
)
