"""The Litestar application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.exceptions import ClientException
from litestar.middleware import DefineMiddleware
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError as RedisReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError

from taskflow.database import open_pool
from taskflow.gateway.access_log import AccessLogMiddleware
from taskflow.gateway.auth import JWTAuthMiddleware, TokenRules, read_only_guard
from taskflow.gateway.bounded_pool import BoundedPool
from taskflow.gateway.context import GatewayContext, provide_context, provide_principal, provide_request_id
from taskflow.gateway.errors import (
    DependencyUnavailable,
    client_error,
    dependency_unavailable,
    internal_error,
    submission_refused,
)
from taskflow.gateway.feed.hub import FeedHub
from taskflow.gateway.openapi import RawDefaultStructSchemaPlugin, RawJSONSchemaPlugin
from taskflow.gateway.rate_limit import RateLimitMiddleware
from taskflow.gateway.request_body import MAX_BODY_BYTES, check_request
from taskflow.gateway.request_id import REQUEST_ID_HEADER, RequestIdMiddleware, send_request_id
from taskflow.gateway.routes.audit import list_audit
from taskflow.gateway.routes.campaign_control import (
    pause_campaign,
    resend_failed,
    resume_campaign,
    start_campaign,
)
from taskflow.gateway.routes.campaigns import CampaignController
from taskflow.gateway.routes.dlq import DeadLetterController
from taskflow.gateway.routes.feeds import campaign_feed, create_sse_ticket, event_feed, provide_feeds, task_feed
from taskflow.gateway.routes.health import health, ready
from taskflow.gateway.routes.quarantine import list_quarantine
from taskflow.gateway.routes.schedules import ScheduleController
from taskflow.gateway.routes.stats import stats
from taskflow.gateway.routes.tasks import TaskController
from taskflow.gateway.routes.unsubscribe import unsubscribe, unsubscribe_page
from taskflow.gateway.routes.workers import WorkerController
from taskflow.settings import Settings, require_jwt_secret
from taskflow.streams.connection import open_redis
from taskflow.streams.groups import ensure_groups
from taskflow.submission.errors import SubmissionError
from taskflow.tasks import load_task_modules


def create_app(settings: Settings) -> Litestar:
    rules = TokenRules(
        secret=require_jwt_secret(settings),
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        leeway_seconds=settings.jwt_leeway_seconds,
    )
    load_task_modules(settings.task_modules)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        bound_s = settings.dependency_timeout_seconds
        redis = await open_redis(settings, command_timeout_seconds=bound_s)
        pool = BoundedPool(await open_pool(settings, command_timeout_seconds=bound_s), bound_s)
        try:
            app.state.ctx = GatewayContext.build(settings, redis, pool)
            app.state.feeds = FeedHub(app.state.ctx)
            await ensure_groups(redis, app.state.ctx.keyspace)
            yield
        finally:
            if getattr(app.state, "feeds", None) is not None:
                await app.state.feeds.close()
            await pool.close()
            await redis.aclose()

    return Litestar(
        route_handlers=[
            TaskController,
            CampaignController,
            DeadLetterController,
            WorkerController,
            ScheduleController,
            list_quarantine,
            list_audit,
            event_feed,
            task_feed,
            campaign_feed,
            start_campaign,
            pause_campaign,
            resume_campaign,
            resend_failed,
            create_sse_ticket,
            stats,
            health,
            ready,
            unsubscribe,
            unsubscribe_page,
        ],
        # The seed's order: CORS (Litestar runs it outermost), the request id (so that it
        # covers everything logged), the access log, authentication, then rate limits
        # (per user, so after authentication).
        middleware=[
            RequestIdMiddleware(),
            AccessLogMiddleware(),
            DefineMiddleware(JWTAuthMiddleware, rules=rules),
            RateLimitMiddleware(),
        ],
        cors_config=_cors(settings),
        guards=[read_only_guard],
        exception_handlers={
            ClientException: client_error,
            SubmissionError: submission_refused,
            DependencyUnavailable: dependency_unavailable,
            RedisConnectionError: dependency_unavailable,
            RedisTimeoutError: dependency_unavailable,
            # A replica promoted away under us, or a failover in progress: Redis, not the request.
            RedisReadOnlyError: dependency_unavailable,
            Exception: internal_error,
        },
        before_send=[send_request_id],
        # Handlers take ``ctx`` and ``principal`` as parameters instead of digging them out
        # of the request.
        dependencies={
            "ctx": Provide(provide_context, sync_to_thread=False),
            "principal": Provide(provide_principal, sync_to_thread=False),
            "feeds": Provide(provide_feeds, sync_to_thread=False),
            "request_id": Provide(provide_request_id, sync_to_thread=False),
        },
        plugins=[RawJSONSchemaPlugin(), RawDefaultStructSchemaPlugin()],
        before_request=check_request,
        request_max_body_size=MAX_BODY_BYTES,
        lifespan=[lifespan],
        # Logging is configured once per process (taskflow.telemetry), as JSON lines.
        logging_config=None,
    )


def _cors(settings: Settings) -> CORSConfig | None:
    """Browsers on the configured origins (the dashboard's) may call the API with their
    credentials; any other origin gets no ``Access-Control-Allow-Origin``."""
    if not settings.cors_origins:
        return None
    return CORSConfig(
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "POST", "PUT", "DELETE"],
        allow_credentials=True,
        allow_headers=[
            "Authorization",
            "Content-Type",
            "Idempotency-Key",
            REQUEST_ID_HEADER,
            "Last-Event-ID",
            "traceparent",
        ],
        expose_headers=[
            REQUEST_ID_HEADER,
            "Location",
            "Retry-After",
            "RateLimit-Limit",
            "RateLimit-Remaining",
            "RateLimit-Reset",
            "Idempotent-Replayed",
        ],
        max_age=600,
    )
