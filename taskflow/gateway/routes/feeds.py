"""Live feeds (SSE): ``/api/v1/events/stream`` (every event the caller may see),
``/api/v1/tasks/{id}/stream`` (one task, from its submission to its end) and the one-use
tickets browsers open them with."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Final
from uuid import UUID, uuid4

import msgspec
import structlog
from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, HeaderParameter, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage
from litestar.status_codes import HTTP_201_CREATED, HTTP_429_TOO_MANY_REQUESTS

from taskflow.events import EVENT_TYPES, AnyEvent
from taskflow.gateway.auth import principal_bytes
from taskflow.gateway.context import Caller, Ctx, GatewayContext
from taskflow.gateway.errors import invalid
from taskflow.gateway.feed.hub import Feed, FeedHub
from taskflow.gateway.feed.selection import TASK_EVENTS, Selection, TaskMeta, status_after
from taskflow.gateway.feed.tickets import issue_ticket
from taskflow.gateway.queries import get_task_view
from taskflow.gateway.schemas import TASK_STATUSES
from taskflow.replay.history import EventFilter, events_after
from taskflow.replay.position import START, Position, parse_sse_id, sse_id

log = structlog.get_logger()
Feeds = NamedDependency[FeedHub]
EVENT_TAGS: Final = frozenset(str(t.__struct_config__.tag) for t in EVENT_TYPES)
# A task feed ends after the event that leaves its task in one of these (a failure that
# books a retry leaves it SCHEDULED, so the feed goes on).
ENDED: Final = frozenset({"COMPLETED", "FAILED", "TIMEOUT", "CANCELLED"})
# Events checked against the caller per round trip while a resume catches up.
HISTORY_CHUNK = 500
_json = msgspec.json.Encoder()


class SseTicket(msgspec.Struct, kw_only=True):
    ticket: str
    expires_at: datetime


@post("/api/v1/sse-tickets", status_code=HTTP_201_CREATED)
async def create_sse_ticket(ctx: Ctx, principal: Caller) -> SseTicket:
    """A one-use ticket (60 s) to open a feed with ``?ticket=``, for browsers' EventSource,
    which cannot send an Authorization header."""
    ticket, expires_at = await issue_ticket(ctx.redis, ctx.keyspace, principal_bytes(principal))
    return SseTicket(ticket=ticket, expires_at=expires_at)


@get("/api/v1/events/stream")
async def event_feed(
    ctx: Ctx,
    principal: Caller,
    feeds: Feeds,
    task_name: Annotated[list[str] | None, QueryParameter(max_items=50)] = None,
    status: Annotated[list[str] | None, QueryParameter(max_items=10)] = None,
    event_type: Annotated[list[str] | None, QueryParameter(name="type", max_items=30)] = None,
    last_event_id: Annotated[str | None, HeaderParameter(name="Last-Event-ID", max_length=64)] = None,
    resume_from: Annotated[str | None, QueryParameter(name="last_event_id", max_length=64)] = None,
    ticket: Annotated[str | None, QueryParameter(max_length=128)] = None,
) -> ServerSentEvent:
    """Every event the caller may see (their own tasks'; an admin's: all), live, as SSE.
    The ``id`` is the event's stream id: ``Last-Event-ID`` (or ``?last_event_id=`` with a
    ticket) resumes after it with no gap and no repeat. Filters: ``task_name``,
    ``status`` (the task's status after the event), ``type`` (event types); each may
    repeat."""
    selection = Selection(
        principal=principal,
        task_names=frozenset(task_name or ()),
        statuses=_statuses(status),
        event_types=_event_types(event_type),
    )
    resume = _resume(ctx, last_event_id or resume_from)
    return await _open(ctx, feeds, selection, resume, ends_with_task=False)


@get("/api/v1/tasks/{task_id:uuid}/stream")
async def task_feed(
    ctx: Ctx,
    principal: Caller,
    feeds: Feeds,
    task_id: FromPath[UUID],
    last_event_id: Annotated[str | None, HeaderParameter(name="Last-Event-ID", max_length=64)] = None,
    resume_from: Annotated[str | None, QueryParameter(name="last_event_id", max_length=64)] = None,
    ticket: Annotated[str | None, QueryParameter(max_length=128)] = None,
) -> ServerSentEvent:
    """One task's events, from its submission (or after ``Last-Event-ID``) until it ends:
    after its final event the feed sends ``event: end`` and closes."""
    view = await get_task_view(ctx, task_id, principal)
    if view is None:
        raise NotFoundException(f"task {task_id} not found")
    feeds.directory.note(str(task_id), TaskMeta(view.created_by, view.task_name))
    selection = Selection(principal=principal, task_id=str(task_id))
    resume = _resume(ctx, last_event_id or resume_from) or START
    return await _open(ctx, feeds, selection, resume, ends_with_task=True)


@get("/api/v1/campaigns/{campaign_id:uuid}/stream")
async def campaign_feed(
    ctx: Ctx,
    principal: Caller,
    feeds: Feeds,
    campaign_id: FromPath[UUID],
    last_event_id: Annotated[str | None, HeaderParameter(name="Last-Event-ID", max_length=64)] = None,
    resume_from: Annotated[str | None, QueryParameter(name="last_event_id", max_length=64)] = None,
    ticket: Annotated[str | None, QueryParameter(max_length=128)] = None,
) -> ServerSentEvent:
    """One campaign's events, live: started, paused, resumed, and each recipient's fate
    (``campaign.recipient_sent``, ``…_failed``, ``…_skipped``, ``…_unsubscribed``) until
    ``campaign.completed``; from its creation with ``?last_event_id=0-0``."""
    owner = await ctx.redis.hget(ctx.keyspace.campaign(str(campaign_id)), "owner")  # type: ignore[misc]
    if owner is None or (owner != principal.sub and not principal.sees_all):
        raise NotFoundException(f"campaign {campaign_id} not found")
    selection = Selection(principal=principal, campaign_id=str(campaign_id))
    resume = _resume(ctx, last_event_id or resume_from)
    return await _open(ctx, feeds, selection, resume, ends_with_task=False)


async def _open(
    ctx: GatewayContext, feeds: FeedHub, selection: Selection, resume: Position | None, *, ends_with_task: bool
) -> ServerSentEvent:
    settings = ctx.settings
    feed_id = uuid4().hex
    user = selection.principal.sub
    lapse_ms = int(settings.sse_keepalive_seconds * 3000)
    if not await ctx.scripts.open_feed(
        user=user, feed_id=feed_id, action="open", lapse_ms=lapse_ms, cap=settings.sse_max_streams_per_user
    ):
        raise HTTPException(
            status_code=HTTP_429_TOO_MANY_REQUESTS,
            detail=f"{settings.sse_max_streams_per_user} feeds are open for {user} already; close one first",
            headers={"Retry-After": str(int(settings.sse_keepalive_seconds))},
        )
    try:
        feed = await feeds.join(selection)
    except BaseException:
        await ctx.scripts.open_feed(user=user, feed_id=feed_id, action="close", lapse_ms=lapse_ms, cap=0)
        raise
    body = _messages(ctx, feeds, feed, resume, ends_with_task, feed_id, lapse_ms)
    # No proxy buffering or caching of a live stream.
    return ServerSentEvent(body, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _messages(
    ctx: GatewayContext,
    feeds: FeedHub,
    feed: Feed,
    resume: Position | None,
    ends_with_task: bool,
    feed_id: str,
    lapse_ms: int,
) -> AsyncIterator[ServerSentEventMessage]:
    settings = ctx.settings
    selection = feed.selection
    last = resume
    renewed = time.monotonic()
    try:
        if resume is not None:
            async for message, position, ended in _caught_up(ctx, feeds, selection, resume):
                last = position
                yield message
                if ends_with_task and ended:
                    yield ServerSentEventMessage(event="end", data="")
                    return
        while True:
            live = await feed.next(settings.sse_keepalive_seconds)
            if live is None:
                if feed.cut_off:
                    log.info("feed_cut_off", reason=feed.cut_reason)
                    return  # the client reconnects with Last-Event-ID and catches up
                yield ServerSentEventMessage(comment="keep-alive")
            else:
                position, event = live
                if last is not None and position <= last:
                    continue  # already sent while catching up
                last = position
                yield _message(feeds, position, event, ctx.keyspace.all_partitions)
                if ends_with_task and status_after(event) in ENDED:
                    yield ServerSentEventMessage(event="end", data="")
                    return
            if time.monotonic() - renewed >= settings.sse_keepalive_seconds:
                renewed = time.monotonic()
                await ctx.scripts.open_feed(
                    user=selection.principal.sub, feed_id=feed_id, action="renew", lapse_ms=lapse_ms, cap=0
                )
    finally:
        feeds.leave(feed)
        # Shielded: this runs as the client goes away, and the count must not keep it.
        await asyncio.shield(
            ctx.scripts.open_feed(
                user=selection.principal.sub, feed_id=feed_id, action="close", lapse_ms=lapse_ms, cap=0
            )
        )


async def _caught_up(
    ctx: GatewayContext, feeds: FeedHub, selection: Selection, resume: Position
) -> AsyncIterator[tuple[ServerSentEventMessage, Position, bool]]:
    """The history after ``resume`` that the feed shows, checked a chunk at a time."""
    chunk: list[tuple[Position, AnyEvent]] = []
    history = events_after(
        ctx.redis, ctx.pool, ctx.keyspace, resume, EventFilter(aggregate_id=selection.task_id or selection.campaign_id)
    )
    async for item in history:
        chunk.append(item)
        if len(chunk) >= HISTORY_CHUNK:
            for shown in await _shown(feeds, selection, chunk, ctx.keyspace.all_partitions):
                yield shown
            chunk = []
    for shown in await _shown(feeds, selection, chunk, ctx.keyspace.all_partitions):
        yield shown


async def _shown(
    feeds: FeedHub, selection: Selection, chunk: list[tuple[Position, AnyEvent]], partitions: range
) -> list[tuple[ServerSentEventMessage, Position, bool]]:
    """What a resume sends of ``chunk``: each message, its position, whether it ends its task."""
    wanted = {e.aggregate_id for _, e in chunk if selection.needs_meta(e)}
    if wanted:
        await feeds.directory.resolve(wanted)
    shown = []
    for position, event in chunk:
        meta = feeds.directory.get(event.aggregate_id) if isinstance(event, TASK_EVENTS) else None
        if selection.shows(event, meta):
            ended = status_after(event) in ENDED
            shown.append((_message(feeds, position, event, partitions), position, ended))
    return shown


def _message(feeds: FeedHub, position: Position, event: AnyEvent, partitions: range) -> ServerSentEventMessage:
    """The event as an SSE message, encoded once per gateway however many feeds show it."""
    return feeds.encoded(
        position,
        lambda: ServerSentEventMessage(
            id=sse_id(position, partitions),
            event=str(type(event).__struct_config__.tag),
            data=_json.encode(event).decode(),
        ).encode(),
    )


def _resume(ctx: GatewayContext, text: str | None) -> Position | None:
    if not text:
        return None
    position = parse_sse_id(text, ctx.keyspace.all_partitions)
    if position is None:
        raise invalid("Last-Event-ID", f"{text!r} is not an event id of this feed", source="header")
    return position


def _statuses(values: list[str] | None) -> frozenset[str]:
    for value in values or ():
        if value not in TASK_STATUSES:
            raise invalid("status", f"{value!r} is not one of {', '.join(TASK_STATUSES)}", source="query")
    return frozenset(values or ())


def _event_types(values: list[str] | None) -> frozenset[str]:
    for value in values or ():
        if value not in EVENT_TAGS:
            raise invalid("type", f"{value!r} is not an event type", source="query")
    return frozenset(values or ())


def provide_feeds(request: Request) -> FeedHub:  # type: ignore[type-arg]
    """Litestar dependency ``feeds``: the process's feed hub, made in the lifespan."""
    hub: FeedHub = request.app.state.feeds
    return hub
