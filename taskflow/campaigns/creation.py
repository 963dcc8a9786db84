"""Creating a campaign: its events and its live state in Redis, written all or nothing.

``creation_events`` and ``campaign_state`` decide (pure); ``append_campaign`` writes:
``CampaignCreated``, then the recipients in ``RecipientsAdded`` chunks of at most
``MAX_CHUNK``, the campaign hash and its ledger (every recipient ``pending``), in one
MULTI on keys of the campaign's partition (ARCHITECTURE invariants 2 and 7). A campaign
is never half there: no reader sees the hash without the events, nor the reverse.
"""

from __future__ import annotations

from datetime import datetime

import msgspec
from redis.asyncio import Redis

from taskflow.campaigns.templates import CampaignTemplate
from taskflow.events import AnyEvent, encode, tag_of
from taskflow.events.base import Envelope
from taskflow.events.campaign import MAX_CHUNK, CampaignCreated, CampaignRecipient, RecipientsAdded
from taskflow.streams.keyspace import Keyspace

# HSET arguments per command: 100,000 recipients in one command would be one huge
# request that blocks Redis while it is parsed; chunks keep each command short.
_LEDGER_CHUNK = 5_000


class NewCampaign(msgspec.Struct, frozen=True, kw_only=True):
    """A campaign as accepted at the gateway, before it becomes events."""

    campaign_id: str
    owner: str
    name: str
    template: CampaignTemplate
    scheduled_at: datetime | None
    rate_limit_per_minute: int
    recipients: list[CampaignRecipient]
    created_at: datetime
    request_id: str | None = None
    traceparent: str | None = None

    @property
    def status(self) -> str:
        """DRAFT until started, SCHEDULED when a start time was given."""
        return "SCHEDULED" if self.scheduled_at is not None else "DRAFT"


def creation_events(new: NewCampaign) -> list[AnyEvent]:
    envelope = Envelope(
        aggregate_id=new.campaign_id,
        occurred_at=new.created_at,
        # The campaign's own id: its send tasks later carry the same correlation.
        correlation_id=new.campaign_id,
        causation_id=None,
        actor=new.owner,
        request_id=new.request_id,
        traceparent=new.traceparent,
    )
    created = CampaignCreated(
        **envelope,
        name=new.name,
        template_subject=new.template.subject,
        template_body=new.template.body,
        template_text=new.template.text,
        template_variables=new.template.variables,
        scheduled_at=new.scheduled_at,
        rate_limit_per_minute=new.rate_limit_per_minute,
        total_recipients=len(new.recipients),
    )
    chunks: list[AnyEvent] = [
        RecipientsAdded(**envelope, recipients=tuple(new.recipients[i : i + MAX_CHUNK]))
        for i in range(0, len(new.recipients), MAX_CHUNK)
    ]
    return [created, *chunks]


def campaign_state(new: NewCampaign) -> dict[str, str]:
    """The campaign hash (``taskflow/campaigns/__init__.py``), plus ``name``,
    ``created_at`` and ``scheduled_at`` (ISO 8601, empty when none) for whoever starts
    scheduled campaigns."""
    return {
        "status": new.status.lower(),
        "owner": new.owner,
        "name": new.name,
        "rate_limit_per_minute": str(new.rate_limit_per_minute),
        "template": msgspec.json.encode(new.template).decode(),
        "pending": str(len(new.recipients)),
        "sent": "0",
        "failed": "0",
        "skipped": "0",
        "created_at": new.created_at.isoformat(),
        "scheduled_at": new.scheduled_at.isoformat() if new.scheduled_at else "",
    }


async def append_campaign(redis: Redis, keyspace: Keyspace, new: NewCampaign) -> list[str]:
    """Write the campaign (events, hash, ledger, and its due time when scheduled) in one
    MULTI; the event ids."""
    events = creation_events(new)
    stream = keyspace.events_of(new.campaign_id)
    async with redis.pipeline(transaction=True) as pipe:
        for event in events:
            pipe.xadd(stream, {"type": tag_of(event), "data": encode(event)})
        pipe.hset(keyspace.campaign(new.campaign_id), mapping=campaign_state(new))
        ledger = keyspace.campaign_ledger(new.campaign_id)
        for start in range(0, len(new.recipients), _LEDGER_CHUNK):
            chunk = new.recipients[start : start + _LEDGER_CHUNK]
            pipe.hset(ledger, mapping={r.recipient_id: "pending" for r in chunk})
        if new.scheduled_at is not None:
            # The coordinator leading the campaign's partition starts it when due.
            partition = keyspace.partition_of(new.campaign_id)
            due_ms = int(new.scheduled_at.timestamp() * 1000)
            pipe.zadd(keyspace.campaigns_due(partition), {new.campaign_id: due_ms})
        results: list[object] = await pipe.execute()
    return [str(r) for r in results[: len(events)]]
