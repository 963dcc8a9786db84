"""A campaign's recipients, as its RecipientsAdded events list them: read from the one
stitched history (archive + Redis), so they are there however long ago the campaign was
created and however far Redis was trimmed since."""

from __future__ import annotations

from redis.asyncio import Redis

from taskflow.events import CampaignRecipient, RecipientsAdded
from taskflow.replay.history import EventFilter, Rows, events_after
from taskflow.replay.position import START
from taskflow.streams.keyspace import Keyspace

_ADDED = frozenset({str(RecipientsAdded.__struct_config__.tag)})


class Audience:
    def __init__(self, redis: Redis, rows: Rows, keyspace: Keyspace) -> None:
        self.redis = redis
        self.rows = rows
        self.keyspace = keyspace

    async def recipients(self, campaign_id: str) -> list[CampaignRecipient]:
        """Every recipient, in the order they were given."""
        found: list[CampaignRecipient] = []
        selection = EventFilter(aggregate_id=campaign_id, types=_ADDED)
        async for _, event in events_after(self.redis, self.rows, self.keyspace, START, selection, page=100):
            if isinstance(event, RecipientsAdded):
                found.extend(event.recipients)
        return found
