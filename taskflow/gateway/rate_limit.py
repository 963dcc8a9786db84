"""Rate limits in Redis, shared by every gateway replica: per user (after authentication)
and per client address, checked together and counted only when both allow, in one Lua
call (GCRA: ``lua/rate_limit.lua``). Over the limit: 429 with ``Retry-After``; every
limited response carries ``RateLimit-Limit``, ``RateLimit-Remaining`` and
``RateLimit-Reset`` (the tightest limit's).

The address limit counts by ``client_address`` (proxies are believed only when trusted).
"""

from __future__ import annotations

import math
import re

import msgspec
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.status_codes import HTTP_429_TOO_MANY_REQUESTS
from litestar.types import ASGIApp, HTTPResponseBodyEvent, HTTPResponseStartEvent, Message, Receive, Scope, Send

from taskflow.gateway.auth import Principal
from taskflow.gateway.client_address import client_address
from taskflow.gateway.request_id import request_id_of
from taskflow.settings import Settings

PERIOD_MS = 60_000


class Quota(msgspec.Struct, frozen=True):
    """What the limits said about one request."""

    allowed: bool
    retry_after_ms: int
    limit: int
    remaining: int
    reset_ms: int

    def headers(self) -> dict[str, str]:
        found = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(math.ceil(self.reset_ms / 1000)),
        }
        if not self.allowed:
            found["Retry-After"] = str(max(1, math.ceil(self.retry_after_ms / 1000)))
        return found


def quota_of(answer: list[int], limits: list[int]) -> Quota:
    """The script's answer as one quota: the limit with the fewest requests left."""
    allowed, retry_after = bool(answer[0]), int(answer[1])
    per_limit = [(int(answer[2 + 2 * i]), int(answer[3 + 2 * i]), limit) for i, limit in enumerate(limits)]
    remaining, reset_ms, limit = min(per_limit)
    return Quota(allowed=allowed, retry_after_ms=retry_after, limit=limit, remaining=remaining, reset_ms=reset_ms)


# Probes and the schema pages, by the request's path: the schema's pages are served by
# handlers at other paths (``/schema/{path}``), which ``exclude_path_pattern`` would stop
# matching in Litestar 3.
_NEVER_LIMITED = re.compile(r"^/health$|^/ready$|^/metrics$|^/schema")


def _never_limited(scope: Scope) -> bool:
    return _NEVER_LIMITED.match(scope["path"]) is not None


class RateLimitMiddleware(ASGIMiddleware):
    """Runs after authentication (it needs the user); probes are never limited."""

    scopes = (ScopeType.HTTP,)
    should_bypass_for_scope = staticmethod(_never_limited)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        ctx = scope["litestar_app"].state.ctx
        settings: Settings = ctx.settings
        limits: list[tuple[str, int]] = []
        user = scope.get("user")
        if isinstance(user, Principal) and settings.rate_limit_per_user:
            limits.append((ctx.keyspace.rate_limit("user", user.sub), settings.rate_limit_per_user))
        if settings.rate_limit_per_ip:
            headers = dict(scope["headers"])
            forwarded = headers.get(b"x-forwarded-for")
            client = scope.get("client")
            peer = client[0] if client else None
            address = client_address(peer, forwarded.decode("latin-1") if forwarded else None, ctx.trusted_proxies)
            limits.append((ctx.keyspace.rate_limit("ip", address), settings.rate_limit_per_ip))
        if not limits:
            await next_app(scope, receive, send)
            return
        answer = await ctx.scripts.rate_limit([key for key, _ in limits], [n for _, n in limits], PERIOD_MS)
        quota = quota_of(answer, [n for _, n in limits])
        if not quota.allowed:
            await _refuse(scope, send, quota)
            return

        async def send_with_quota(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableScopeHeaders.from_message(message)
                for name, value in quota.headers().items():
                    response_headers[name] = value
            await send(message)

        await next_app(scope, receive, send_with_quota)


async def _refuse(scope: Scope, send: Send, quota: Quota) -> None:
    body = msgspec.json.encode(
        {
            "status_code": HTTP_429_TOO_MANY_REQUESTS,
            "detail": f"rate limited: at most {quota.limit} requests per minute; "
            f"retry in {quota.headers()['Retry-After']} s",
        }
    )
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id_of(scope).encode()),
        *((name.lower().encode(), value.encode()) for name, value in quota.headers().items()),
    ]
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": HTTP_429_TOO_MANY_REQUESTS,
        "headers": headers,
    }
    end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
    await send(start)
    await send(end)
