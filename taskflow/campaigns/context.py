"""What the ``send_email`` task needs from its worker process: settings, Redis, the
ledger scripts, the SMTP pool, the unsubscribe and DKIM keys. Built once per event loop
from the environment on first use, as ``Producer.default()`` is: task code gets no
handle on the worker's own objects, and a worker that never sends never connects."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import ClassVar
from weakref import WeakKeyDictionary

from redis.asyncio import Redis

from taskflow.campaigns.ids import normalised
from taskflow.campaigns.ledger import CampaignLedger
from taskflow.campaigns.signing import DkimKey, dkim_key_of
from taskflow.campaigns.smtp import SmtpPool, SmtpServer
from taskflow.campaigns.unsubscribe import unsubscribe_key
from taskflow.settings import Settings, load_settings, require_jwt_secret
from taskflow.streams.connection import open_redis
from taskflow.streams.keyspace import Keyspace


@dataclass(frozen=True)
class SendContext:
    settings: Settings
    keyspace: Keyspace
    redis: Redis
    ledger: CampaignLedger
    pool: SmtpPool
    unsubscribe_key: bytes
    dkim_key: DkimKey | None

    _per_loop: ClassVar[WeakKeyDictionary[asyncio.AbstractEventLoop, SendContext]] = WeakKeyDictionary()

    @classmethod
    async def build(cls, settings: Settings) -> SendContext:
        """Raises ``ConfigurationError`` without TASKFLOW_JWT_SECRET (it signs the
        unsubscribe links) or with an unreadable DKIM key."""
        key = unsubscribe_key(require_jwt_secret(settings))
        dkim_key = dkim_key_of(settings)
        keyspace = Keyspace.of(settings)
        redis = await open_redis(settings)
        return cls(
            settings, keyspace, redis, CampaignLedger(redis, keyspace), SmtpPool(SmtpServer.of(settings)), key, dkim_key
        )

    @classmethod
    async def for_this_loop(cls) -> SendContext:
        loop = asyncio.get_running_loop()
        context = cls._per_loop.get(loop)
        if context is None:
            context = await cls.build(load_settings(os.environ))
            cls._per_loop[loop] = context
        return context

    async def is_suppressed(self, owner: str, email: str) -> bool:
        found = await self.redis.sismember(self.keyspace.suppressed(owner), normalised(email))  # type: ignore[misc]
        return bool(found)
