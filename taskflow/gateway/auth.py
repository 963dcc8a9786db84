"""JWT bearer authentication for every ``/api/v1`` route."""

from __future__ import annotations

import re
import time
from typing import Literal

import jwt
import msgspec
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp

from taskflow.gateway.feed.tickets import redeem_ticket

Role = Literal["user", "admin"]
ALGORITHM = "HS256"
DEFAULT_TTL_SECONDS = 3600


class Principal(msgspec.Struct, frozen=True):
    """Who is calling: the token's subject and role."""

    sub: str
    role: Role = "user"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class _Claims(msgspec.Struct):
    sub: str
    exp: int
    role: Role = "user"


def issue_token(secret: str, sub: str, role: Role = "user", ttl_seconds: int = DEFAULT_TTL_SECONDS) -> str:
    now = int(time.time())
    return jwt.encode({"sub": sub, "role": role, "iat": now, "exp": now + ttl_seconds}, secret, algorithm=ALGORITHM)


def verify_token(secret: str, token: str) -> Principal:
    """The token's principal; ``NotAuthorizedException`` (401) for any bad token."""
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp"]})
        parsed = msgspec.convert(claims, _Claims)
    except jwt.ExpiredSignatureError as e:
        raise NotAuthorizedException("token expired") from e
    except (jwt.InvalidTokenError, msgspec.ValidationError) as e:
        raise NotAuthorizedException("invalid token") from e
    if not parsed.sub:
        raise NotAuthorizedException("invalid token: empty subject")
    return Principal(sub=parsed.sub, role=parsed.role)


class JWTAuthMiddleware(AbstractAuthenticationMiddleware):
    """Sets ``request.user`` to a ``Principal``; probes and the schema need no token."""

    def __init__(self, app: ASGIApp, secret: str) -> None:
        super().__init__(app, exclude=[r"^/health$", r"^/ready$", r"^/metrics$", r"^/schema"])
        self._secret = secret

    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:  # type: ignore[type-arg]
        header = connection.headers.get("authorization", "")
        if not header and "ticket" in connection.query_params and FEED_PATH.fullmatch(connection.scope["path"]):
            return await _redeem(connection, connection.query_params["ticket"])
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise NotAuthorizedException("missing bearer token")
        principal = verify_token(self._secret, token.strip())
        return AuthenticationResult(user=principal, auth=token)


# Where a one-use ticket stands in for the bearer token (browsers' EventSource sends no
# headers): the live feeds, and nothing else.
FEED_PATH = re.compile(r"/api/v1/(?:events/stream|tasks/[^/]+/stream|campaigns/[^/]+/stream)")


def principal_bytes(principal: Principal) -> bytes:
    """How a ticket remembers its holder."""
    return msgspec.json.encode(principal)


async def _redeem(connection: ASGIConnection, ticket: str) -> AuthenticationResult:  # type: ignore[type-arg]
    ctx = connection.app.state.ctx
    holder = await redeem_ticket(ctx.redis, ctx.keyspace, ticket)
    if holder is None:
        raise NotAuthorizedException("invalid, used or expired SSE ticket")
    return AuthenticationResult(user=_holder.decode(holder), auth="ticket")


_holder = msgspec.json.Decoder(Principal)
