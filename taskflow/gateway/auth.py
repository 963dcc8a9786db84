"""JWT bearer authentication for every ``/api/v1`` route."""

from __future__ import annotations

import re
import time
from typing import Literal

import jwt
import msgspec
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp

from taskflow.gateway.feed.tickets import redeem_ticket

Role = Literal["user", "admin", "analyst", "ops"]
ROLES: tuple[Role, ...] = ("user", "admin", "analyst", "ops")
ALGORITHM = "HS256"
DEFAULT_TTL_SECONDS = 3600
# Methods a read-only role may use; everything else changes state.
_READING = frozenset({"GET", "HEAD", "OPTIONS"})


class Principal(msgspec.Struct, frozen=True):
    """Who is calling: the token's subject and role. ``admin`` sees and does everything;
    ``analyst`` and ``ops`` see everything and change nothing; ``user`` sees and acts on
    their own tasks."""

    sub: str
    role: Role = "user"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def sees_all(self) -> bool:
        return self.role in ("admin", "analyst", "ops")

    @property
    def read_only(self) -> bool:
        return self.role in ("analyst", "ops")


class TokenRules(msgspec.Struct, frozen=True, kw_only=True):
    """What a token must satisfy beyond its signature (from the settings)."""

    secret: str
    audience: str = ""
    issuer: str = ""
    leeway_seconds: float = 5.0


class _Claims(msgspec.Struct):
    sub: str
    exp: int
    role: Role = "user"


def issue_token(
    secret: str,
    sub: str,
    role: Role = "user",
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    *,
    audience: str = "",
    issuer: str = "",
) -> str:
    now = int(time.time())
    claims: dict[str, object] = {"sub": sub, "role": role, "iat": now, "nbf": now, "exp": now + ttl_seconds}
    if audience:
        claims["aud"] = audience
    if issuer:
        claims["iss"] = issuer
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(rules: TokenRules, token: str) -> Principal:
    """The token's principal; ``NotAuthorizedException`` (401) for any bad token: bad
    signature or algorithm (only HS256; ``alg: none`` is refused), expired, not yet valid
    (``nbf``), wrong audience or issuer when those are configured."""
    required = ["sub", "exp"] + (["aud"] if rules.audience else []) + (["iss"] if rules.issuer else [])
    try:
        claims = jwt.decode(
            token,
            rules.secret,
            algorithms=[ALGORITHM],
            audience=rules.audience or None,
            issuer=rules.issuer or None,
            leeway=rules.leeway_seconds,
            options={"require": required, "verify_aud": bool(rules.audience)},
        )
        parsed = msgspec.convert(claims, _Claims)
    except jwt.ExpiredSignatureError as e:
        raise NotAuthorizedException("token expired") from e
    except jwt.ImmatureSignatureError as e:
        raise NotAuthorizedException("token not valid yet (nbf)") from e
    except jwt.InvalidAudienceError as e:
        raise NotAuthorizedException("token is for another audience") from e
    except jwt.InvalidIssuerError as e:
        raise NotAuthorizedException("token from another issuer") from e
    except (jwt.InvalidTokenError, msgspec.ValidationError) as e:
        raise NotAuthorizedException("invalid token") from e
    if not parsed.sub:
        raise NotAuthorizedException("invalid token: empty subject")
    return Principal(sub=parsed.sub, role=parsed.role)


def read_only_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:  # type: ignore[type-arg]
    """Analysts and ops read; only a new feed ticket (for reading) is theirs to create."""
    principal = connection.scope.get("user")  # none on the routes without a token
    if (
        isinstance(principal, Principal)
        and principal.read_only
        and connection.scope.get("method", "GET") not in _READING
        and connection.scope["path"] != "/api/v1/sse-tickets"
    ):
        raise PermissionDeniedException(f"the {principal.role} role is read-only")


class JWTAuthMiddleware(AbstractAuthenticationMiddleware):
    """Sets ``request.user`` to a ``Principal``; probes, the schema and unsubscribe links (their
    signed token is the credential) need no token."""

    def __init__(self, app: ASGIApp, rules: TokenRules) -> None:
        super().__init__(app, exclude=[r"^/health$", r"^/ready$", r"^/metrics$", r"^/schema", r"^/unsubscribe/"])
        self._rules = rules

    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:  # type: ignore[type-arg]
        header = connection.headers.get("authorization", "")
        if not header and "ticket" in connection.query_params and FEED_PATH.fullmatch(connection.scope["path"]):
            return await _redeem(connection, connection.query_params["ticket"])
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise NotAuthorizedException("missing bearer token")
        principal = verify_token(self._rules, token.strip())
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
