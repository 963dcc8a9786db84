"""What every handler needs, built once in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from redis.asyncio import Redis

from taskflow.campaigns.ledger import CampaignLedger
from taskflow.campaigns.unsubscribe import unsubscribe_key
from taskflow.gateway.auth import Principal
from taskflow.gateway.bounded_pool import BoundedPool
from taskflow.gateway.client_address import TrustedProxies
from taskflow.gateway.request_id import request_id_of
from taskflow.gateway.scripts import GatewayScripts
from taskflow.settings import Settings, require_jwt_secret
from taskflow.streams.cancel import Canceller
from taskflow.streams.keyspace import Keyspace
from taskflow.streams.submit import Submitter


@dataclass(frozen=True)
class GatewayContext:
    settings: Settings
    keyspace: Keyspace
    # Both bounded by settings.dependency_timeout_seconds (streams.connection.open_redis,
    # BoundedPool).
    redis: Redis
    pool: BoundedPool
    scripts: GatewayScripts
    submitter: Submitter
    canceller: Canceller
    # TASKFLOW_TRUSTED_PROXIES, parsed once (client_address).
    trusted_proxies: TrustedProxies
    # The campaign ledger's scripts (unsubscribe) and the key of unsubscribe tokens.
    campaigns: CampaignLedger
    unsubscribe_key: bytes

    @classmethod
    def build(cls, settings: Settings, redis: Redis, pool: BoundedPool) -> GatewayContext:
        keyspace = Keyspace.of(settings)
        return cls(
            settings=settings,
            keyspace=keyspace,
            redis=redis,
            pool=pool,
            scripts=GatewayScripts(redis, keyspace),
            submitter=Submitter(redis, keyspace),
            canceller=Canceller(redis, keyspace),
            trusted_proxies=TrustedProxies(settings.trusted_proxies),
            campaigns=CampaignLedger(redis, keyspace),
            unsubscribe_key=unsubscribe_key(require_jwt_secret(settings)),
        )


def provide_context(state: State) -> GatewayContext:
    """Litestar dependency ``ctx``: what the lifespan built."""
    ctx: GatewayContext = state.ctx
    return ctx


def provide_principal(request: Request[Principal, Any, Any]) -> Principal:
    """Litestar dependency ``principal``: the caller the JWT middleware authenticated."""
    return request.user


def provide_request_id(request: Request[Any, Any, Any]) -> str:
    """Litestar dependency ``request_id``: the request's X-Request-ID, for the events it
    appends."""
    return request_id_of(request.scope)


# How handlers ask for them (``ctx: Ctx, principal: Caller``), resolved by name from the
# app's ``dependencies``.
Ctx = NamedDependency[GatewayContext]
Caller = NamedDependency[Principal]
RequestId = NamedDependency[str]
# Why a person acted (cancel, retry, requeue, pause, resume): kept in the audit trail.
Reason = Annotated[str, QueryParameter(max_length=500, description="Why: kept in the audit trail (GET /api/v1/audit).")]
