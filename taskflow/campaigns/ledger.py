"""The per-recipient ledger of a campaign in Redis (``lua/``): may a recipient be mailed
now, what became of it, and the campaign's shared send rate.

Every key of a script call is in the campaign's partition (one hash tag, invariant 7).
The suppression set is not (it is the owner's, across campaigns): ``begin_send`` reads it
in the same round trip, right after the claim, and an unsubscribe adds to it right after
recording, idempotently.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError
from redis.typing import EncodableT

from taskflow.campaigns.ids import normalised
from taskflow.events import (
    CampaignCompleted,
    RecipientFailed,
    RecipientSent,
    RecipientSkipped,
    RecipientUnsubscribed,
    encode,
    tag_of,
)
from taskflow.streams.coalesced import CoalescedCalls, Command
from taskflow.streams.keyspace import Keyspace
from taskflow.streams.lua import LuaScripts

BeginAnswer = Literal["go", "later", "done", "paused", "unknown", "superseded"]
Outcome = Literal["sent", "failed", "bounced", "skipped", "unsubscribed"]
RecipientEvent = RecipientSent | RecipientFailed | RecipientSkipped | RecipientUnsubscribed
FINAL_STATES = frozenset({"sent", "failed", "bounced", "skipped", "unsubscribed"})


class Admission(msgspec.Struct, frozen=True):
    """``begin_send``'s answer. A ``go``: ``wait_ms`` before the reserved rate slot, and
    whether the owner's suppression list holds the address (read just after the claim).
    A ``later``: the slot this task was told to come back for is ``wait_ms`` off."""

    answer: BeginAnswer
    wait_ms: int = 0
    suppressed: bool = False


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
        # A sending worker's many sends at once share round trips (ADR 0032).
        self._calls = CoalescedCalls(redis)

    async def begin_send(
        self,
        campaign_id: str,
        recipient_id: str,
        task_id: str,
        *,
        owner: str,
        email: str,
        now_ms: int,
        max_wait_ms: int,
    ) -> Admission:
        """A ``go`` claims the recipient (``sending:<task_id>``) and reserves its rate slot;
        a ``later`` does neither. See lua/begin_send.lua. One round trip: the script, then
        the suppression check."""
        ks = self.keyspace
        keys = (ks.campaign(campaign_id), ks.campaign_ledger(campaign_id), ks.campaign_rate(campaign_id))
        args = (recipient_id, task_id, now_ms, max_wait_ms)
        suppression = ("SISMEMBER", ks.suppressed(owner), normalised(email))
        (answer, wait_ms), suppressed = await self._script(self._begin_send, keys, args, suppression)
        return Admission(answer, int(wait_ms), bool(suppressed))

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
        (answer,) = await self._script(
            self._record,
            (ks.campaign(campaign_id), ks.campaign_ledger(campaign_id), ks.events_of(campaign_id)),
            (recipient_id, outcome, tag_of(event), encode(event), tag_of(completed), encode(completed), if_state),
        )
        kind, detail = answer[0], answer[1]
        if kind == "recorded":
            return Recorded("recorded", event_id=detail, completed_id=answer[2])
        return Recorded(kind, state=detail)

    async def _script(
        self, script: AsyncScript, keys: tuple[str, ...], args: tuple[EncodableT, ...], *after: Command
    ) -> list[Any]:
        """The script's reply, then the replies of the commands ``after`` it."""
        call = ("EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            return await self._calls.execute(call, *after)
        except NoScriptError:
            await self.load()  # Redis restarted, or its scripts were flushed
            return await self._calls.execute(("EVALSHA", script.sha, *call[2:]), *after)

    async def state_of(self, campaign_id: str, recipient_id: str) -> str | None:
        state: str | None = await self.redis.hget(self.keyspace.campaign_ledger(campaign_id), recipient_id)  # type: ignore[misc]
        return state

    async def status_of(self, campaign_id: str) -> str | None:
        status: str | None = await self.redis.hget(self.keyspace.campaign(campaign_id), "status")  # type: ignore[misc]
        return status
