"""One-use SSE tickets: a browser's EventSource cannot send an Authorization header, so
a client trades its token for a ticket (``POST /api/v1/sse-tickets``) and opens the feed
with ``?ticket=``. A ticket lives at most 60 s and works once (GETDEL); it is a credential,
so it is never logged."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from redis.asyncio import Redis

from taskflow.streams.keyspace import Keyspace

TICKET_TTL_SECONDS = 60


async def issue_ticket(redis: Redis, keyspace: Keyspace, holder: bytes) -> tuple[str, datetime]:
    """A fresh ticket standing for ``holder`` (the encoded principal), and its expiry."""
    ticket = secrets.token_urlsafe(32)
    await redis.set(keyspace.sse_ticket(ticket), holder, ex=TICKET_TTL_SECONDS)
    return ticket, datetime.now(UTC) + timedelta(seconds=TICKET_TTL_SECONDS)


async def redeem_ticket(redis: Redis, keyspace: Keyspace, ticket: str) -> str | None:
    """Who a ticket stands for, once; None for an unknown, used or expired one."""
    if not ticket or len(ticket) > 128:
        return None
    stored: str | None = await cast("Any", redis.getdel(keyspace.sse_ticket(ticket)))
    return stored
