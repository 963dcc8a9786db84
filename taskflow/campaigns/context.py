"""What the ``send_email`` task needs from its worker process: settings, Redis, the
ledger scripts, the SMTP pool, the unsubscribe and DKIM keys, and the campaigns it is
sending (owner and template never change after create, so each is read once). Built once
per event loop from the environment on first use, as ``Producer.default()`` is: task code
gets no handle on the worker's own objects, and a worker that never sends never connects."""

from __future__ import annotations

import asyncio
import functools
import os
from dataclasses import dataclass, field
from email.utils import parseaddr
from typing import ClassVar
from weakref import WeakKeyDictionary

import msgspec
from redis.asyncio import Redis

from taskflow.campaigns.ledger import CampaignLedger
from taskflow.campaigns.message import sender_domain
from taskflow.campaigns.signing import DkimKey, dkim_key_of
from taskflow.campaigns.smtp import SmtpPool, SmtpServer
from taskflow.campaigns.unsubscribe import unsubscribe_key
from taskflow.settings import Settings, load_settings, require_jwt_secret
from taskflow.streams.connection import open_redis
from taskflow.streams.keyspace import Keyspace

# Campaigns whose owner and template a worker keeps: more than run at once anywhere.
MAX_CAMPAIGNS_KEPT = 256


class SendingCampaign(msgspec.Struct, frozen=True):
    owner: str
    template: str  # as stored: CampaignTemplate's JSON


@dataclass(frozen=True)
class SendContext:
    settings: Settings
    keyspace: Keyspace
    redis: Redis
    ledger: CampaignLedger
    pool: SmtpPool
    unsubscribe_key: bytes
    dkim_key: DkimKey | None
    # TASKFLOW_SMTP_FROM's address (the envelope sender) and domain (the Message-IDs').
    sender_address: str
    message_domain: str
    _campaigns: dict[str, SendingCampaign] = field(default_factory=dict)

    # One per event loop, built by the first send that needs it: the tasks that start with
    # it wait for the same build instead of each opening its own Redis and SMTP pool.
    _per_loop: ClassVar[WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[SendContext]]] = WeakKeyDictionary()

    @classmethod
    async def build(cls, settings: Settings) -> SendContext:
        """Raises ``ConfigurationError`` without TASKFLOW_JWT_SECRET (it signs the
        unsubscribe links) or with an unreadable DKIM key."""
        key = unsubscribe_key(require_jwt_secret(settings))
        dkim_key = dkim_key_of(settings)
        keyspace = Keyspace.of(settings)
        redis = await open_redis(settings)
        return cls(
            settings,
            keyspace,
            redis,
            CampaignLedger(redis, keyspace),
            SmtpPool(SmtpServer.of(settings)),
            key,
            dkim_key,
            parseaddr(settings.smtp_from)[1],
            sender_domain(settings.smtp_from),
        )

    @classmethod
    async def for_this_loop(cls) -> SendContext:
        loop = asyncio.get_running_loop()
        built = cls._per_loop.get(loop)
        if built is None:
            # A task of its own: a send that is cancelled (its timeout, a lost lease) while
            # waiting must not cancel the build the others wait for.
            built = cls._per_loop[loop] = loop.create_task(cls.build(load_settings(os.environ)))
            built.add_done_callback(functools.partial(cls._forget_failed, loop))
        return await asyncio.shield(built)

    @classmethod
    def _forget_failed(cls, loop: asyncio.AbstractEventLoop, built: asyncio.Task[SendContext]) -> None:
        """Those waiting share the failure; the next send tries afresh (Redis may be back,
        the key readable)."""
        if (built.cancelled() or built.exception() is not None) and cls._per_loop.get(loop) is built:
            del cls._per_loop[loop]

    async def campaign(self, campaign_id: str) -> SendingCampaign | None:
        """The campaign's owner and template; None when there is no such campaign."""
        found = self._campaigns.get(campaign_id)
        if found is not None:
            return found
        owner, template = await self.redis.hmget(self.keyspace.campaign(campaign_id), ["owner", "template"])  # type: ignore[misc]
        if owner is None or template is None:
            return None
        if len(self._campaigns) >= MAX_CAMPAIGNS_KEPT:
            del self._campaigns[next(iter(self._campaigns))]  # the longest kept
        found = self._campaigns[campaign_id] = SendingCampaign(owner, template)
        return found
