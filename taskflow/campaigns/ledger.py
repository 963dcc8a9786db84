"""The per-recipient ledger of a campaign in Redis (``lua/``): may a recipient be mailed
now, what became of it, and the campaign's shared send rate.

Every key of a call is in the campaign's partition (one hash tag, invariant 7). The
suppression set is not (it is the owner's, across campaigns), so callers check it before
``begin_send`` and add to it right after an unsubscribe, idempotently.
"""

from __future__ import annotations

from typing import Literal

import msgspec
from redis.asyncio import Redis

from taskflow.events import (
    CampaignCompleted,
    RecipientFailed,
    RecipientSent,
    RecipientSkipped,
    RecipientUnsubscribed,
    encode,
    tag_of,
)
from taskflow.streams.keyspace import Keyspace
from taskflow.streams.lua import LuaScripts

BeginAnswer = Literal["go", "done", "paused", "unknown", "superseded"]
Outcome = Literal["sent", "failed", "bounced", "skipped", "unsubscribed"]
RecipientEvent = RecipientSent | RecipientFailed | RecipientSkipped | RecipientUnsubscribed
FINAL_STATES = frozenset({"sent", "failed", "bounced", "skipped", "unsubscribed"})


class Recorded(msgspec.Struct, frozen=True):
    """What ``record`` did: appended ``event_id`` (and ``completed_id`` when this was the
    campaign's last pending recipient), or nothing (``already``: the recipient's final
    state, or ``unknown``)."""

    outcome: Literal["recorded", "already", "unknown"]
    event_id: str = ""
    completed_id: str = ""
    state: str = ""


class CampaignLedger(LuaScripts):
    def __init__(self, redis: Redis, keyspace: Keyspace) -> None:
        super().__init__(redis, keyspace, "taskflow.campaigns")
        self._begin_send = self.register("begin_send")
        self._record = self.register("record")
        self._acquire_rate = self.register("acquire_rate")

    async def begin_send(self, campaign_id: str, recipient_id: str, task_id: str) -> BeginAnswer:
        """``go`` claims the recipient (``sending:<task_id>``); see lua/begin_send.lua."""
        ks = self.keyspace
        answer: BeginAnswer = await self._begin_send(
            keys=[ks.campaign(campaign_id), ks.campaign_ledger(campaign_id)], args=[recipient_id, task_id]
        )
        return answer

    async def record(
        self, campaign_id: str, recipient_id: str, outcome: Outcome, event: RecipientEvent, *, if_state: str = ""
    ) -> Recorded:
        """Move the recipient to ``outcome`` and append ``event`` in one step; the last
        pending recipient of a running campaign also appends ``CampaignCompleted``. With
        ``if_state``, only while the ledger still holds that state (else ``already``)."""
        ks = self.keyspace
        completed = CampaignCompleted(
            aggregate_id=campaign_id,
            occurred_at=event.occurred_at,
            correlation_id=event.correlation_id,
            causation_id=event.causation_id,
            actor=event.actor,
            sent=0,
            failed=0,
            skipped=0,
        )
        answer = await self._record(
            keys=[ks.campaign(campaign_id), ks.campaign_ledger(campaign_id), ks.events_of(campaign_id)],
            args=[recipient_id, outcome, tag_of(event), encode(event), tag_of(completed), encode(completed), if_state],
        )
        kind, detail = answer[0], answer[1]
        if kind == "recorded":
            return Recorded("recorded", event_id=detail, completed_id=answer[2])
        return Recorded(kind, state=detail)

    async def acquire_rate(self, campaign_id: str, now_ms: int, max_wait_ms: int) -> int:
        """The wait (ms) before this send's reserved slot; negative (minus the wait) when
        the next slot is more than ``max_wait_ms`` off and none was reserved."""
        ks = self.keyspace
        wait_ms: int = await self._acquire_rate(
            keys=[ks.campaign(campaign_id), ks.campaign_rate(campaign_id)], args=[now_ms, max_wait_ms]
        )
        return int(wait_ms)

    async def state_of(self, campaign_id: str, recipient_id: str) -> str | None:
        state: str | None = await self.redis.hget(self.keyspace.campaign_ledger(campaign_id), recipient_id)  # type: ignore[misc]
        return state

    async def status_of(self, campaign_id: str) -> str | None:
        status: str | None = await self.redis.hget(self.keyspace.campaign(campaign_id), "status")  # type: ignore[misc]
        return status
