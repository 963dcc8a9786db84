"""One Redis reader per gateway process, fanning every new event out to the open feeds
(not one XREAD per client). Each feed has a bounded buffer: a client too slow to drain it
is cut off (it reconnects with ``Last-Event-ID`` and loses nothing), and never slows the
reader or the other feeds."""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, cast
from uuid import UUID

import structlog
from litestar.response import ServerSentEventMessage
from redis.asyncio import Redis
from redis.exceptions import RedisError

from taskflow.events import AnyEvent, EventDecodeError, TaskSubmitted, decode
from taskflow.gateway.context import GatewayContext
from taskflow.gateway.errors import DependencyUnavailable
from taskflow.gateway.feed.selection import TASK_EVENTS, Selection, TaskMeta, meta_of
from taskflow.gateway.queries import submitted_events
from taskflow.outage import REDIS_AWAY, Outage
from taskflow.replay.position import Position, position_of
from taskflow.streams.connection import open_redis

log = structlog.get_logger()
READ_BLOCK_MS = 1000
READ_COUNT = 1000
# Events a feed may have waiting before its client counts as too slow.
BUFFER = 10_000
# Tasks whose owner and name the hub remembers (so a feed need not look them up again).
KNOWN_TASKS = 100_000
# Encoded messages kept for feeds that are a little behind.
ENCODED_KEPT = 4096
Item = tuple[Position, AnyEvent]


class Feed:
    """One open SSE connection as the hub sees it."""

    def __init__(self, selection: Selection, buffer: int = BUFFER) -> None:
        self.selection = selection
        self.queue: asyncio.Queue[Item] = asyncio.Queue(buffer)
        self.cut_off = False
        self.cut_reason = ""
        self._woken = asyncio.Event()

    def offer(self, item: Item) -> None:
        if self.cut_off:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.cut("too slow: its buffer of events is full")
            return
        self._woken.set()

    def cut(self, reason: str) -> None:
        """End this feed after what it holds; its client reconnects and resumes."""
        self.cut_off = True
        self.cut_reason = reason
        self._woken.set()

    async def next(self, timeout_s: float) -> Item | None:
        """The next event, or None after ``timeout_s`` or once cut off."""
        while self.queue.empty() and not self.cut_off:
            self._woken.clear()
            try:
                await asyncio.wait_for(self._woken.wait(), timeout_s)
            except TimeoutError:
                return None
        if self.queue.empty():
            return None
        return self.queue.get_nowait()


class TaskDirectory:
    """Owner and name of recent tasks: learnt from the TaskSubmitted events the hub reads,
    else looked up (the submit marker's event, then the projection)."""

    def __init__(self, ctx: GatewayContext) -> None:
        self._ctx = ctx
        self._known: OrderedDict[str, TaskMeta] = OrderedDict()

    def learn(self, event: AnyEvent) -> None:
        if isinstance(event, TaskSubmitted):
            self._remember(event.aggregate_id, meta_of(event))

    def note(self, task_id: str, meta: TaskMeta) -> None:
        """What a caller found out already (a task feed checks its task at open)."""
        self._remember(task_id, meta)

    def get(self, task_id: str) -> TaskMeta | None:
        return self._known.get(task_id)

    async def resolve(self, task_ids: set[str]) -> None:
        """Look up the tasks not known yet, in a few round trips for all of them."""
        missing = [UUID(t) for t in task_ids if t not in self._known and _is_uuid(t)]
        if not missing:
            return
        for task_id, submitted in (await submitted_events(self._ctx, missing)).items():
            self._remember(str(task_id), meta_of(submitted))
        still = [t for t in missing if str(t) not in self._known]
        if still:
            rows = await self._ctx.pool.fetch(
                "SELECT task_id, created_by, task_name FROM tasks WHERE task_id = ANY($1::uuid[])", still
            )
            for row in rows:
                self._remember(str(row["task_id"]), TaskMeta(row["created_by"], row["task_name"]))

    def _remember(self, task_id: str, meta: TaskMeta) -> None:
        self._known[task_id] = meta
        self._known.move_to_end(task_id)
        while len(self._known) > KNOWN_TASKS:
            self._known.popitem(last=False)


class EncodedMessage(ServerSentEventMessage):
    """An SSE message encoded once, sent as is to every feed that shows it."""

    def __init__(self, encoded: bytes) -> None:
        super().__init__()
        self._encoded = encoded

    def encode(self) -> bytes:
        return self._encoded


class FeedHub:
    def __init__(self, ctx: GatewayContext) -> None:
        self._ctx = ctx
        # 1,000 feeds showing one event would otherwise encode it 1,000 times.
        self._encoded: OrderedDict[Position, EncodedMessage] = OrderedDict()
        self.directory = TaskDirectory(ctx)
        self._feeds: set[Feed] = set()
        self._reader: asyncio.Task[None] | None = None
        self._redis: Redis | None = None
        self._outage = Outage("redis")
        # Set once the reader knows where every stream ends: feeds opened after it see
        # every event appended after they joined.
        self._ready = asyncio.Event()

    @property
    def feeds(self) -> int:
        return len(self._feeds)

    async def join(self, selection: Selection) -> Feed:
        """A new feed, receiving every event appended from now on that it shows."""
        feed = Feed(selection)
        self._feeds.add(feed)
        if self._reader is None or self._reader.done():
            self._ready.clear()
            self._reader = asyncio.create_task(self._read_forever())
        await self._ready.wait()
        if self._reader.done():
            self._feeds.discard(feed)
            error = self._reader.exception() if not self._reader.cancelled() else None
            raise DependencyUnavailable("redis", error or RuntimeError("the feed reader stopped"))
        return feed

    def encoded(self, position: Position, encode: Callable[[], bytes]) -> EncodedMessage:
        """The message for the event at ``position``, encoded on first use."""
        message = self._encoded.get(position)
        if message is None:
            message = self._encoded[position] = EncodedMessage(encode())
            if len(self._encoded) > ENCODED_KEPT:
                self._encoded.popitem(last=False)
        return message

    def leave(self, feed: Feed) -> None:
        self._feeds.discard(feed)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._redis is not None:
            await self._redis.aclose()

    async def _read_forever(self) -> None:
        try:
            await self._read()
        except Exception as e:
            # A bug, or Redis refusing us at start: every feed ends (its client reconnects)
            # and the next join starts a new reader.
            log.exception("feed_reader_failed", error=repr(e))
            for feed in self._feeds:
                feed.cut(str(e))
            self._ready.set()
            raise

    async def _read(self) -> None:
        ks = self._ctx.keyspace
        partition_of_stream = {ks.events(p): p for p in ks.all_partitions}
        # Its own connection, without the gateway's per-call bound: XREAD BLOCK waits.
        if self._redis is None:
            self._redis = await open_redis(self._ctx.settings)
            # Named, so an operator (and a test) sees one feed reader per gateway process.
            await self._redis.client_setname(ks.client_name("feed-reader"))
        redis = self._redis
        after = await self._tails(redis, list(partition_of_stream))
        self._ready.set()
        while True:
            try:
                answer = await redis.xread(cast("Any", after), count=READ_COUNT, block=READ_BLOCK_MS)
            except REDIS_AWAY as e:
                self._outage.failed(e, during="feed_read")
                await asyncio.sleep(1)
                continue
            except RedisError as e:
                log.warning("feed_read_failed", error=str(e))
                await asyncio.sleep(1)
                continue
            self._outage.succeeded()
            batch: list[Item] = []
            for stream, entries in answer or []:
                for entry_id, fields in entries:
                    after[stream] = entry_id
                    event = _decoded(entry_id, fields)
                    if event is not None:
                        self.directory.learn(event)
                        batch.append((position_of(entry_id, partition_of_stream[stream]), event))
            if batch:
                batch.sort(key=lambda item: item[0])
                await self._fan_out(batch)

    async def _fan_out(self, batch: list[Item]) -> None:
        feeds = list(self._feeds)
        wanted = {e.aggregate_id for _, e in batch if any(f.selection.needs_meta(e) for f in feeds)}
        if wanted:
            try:
                await self.directory.resolve(wanted)
            except Exception as e:  # noqa: BLE001 - a failed lookup hides events from users, it must not stop the feeds
                log.warning("feed_lookup_failed", error=repr(e), tasks=len(wanted))
        directory = self.directory
        for position, event in batch:
            meta = directory.get(event.aggregate_id) if isinstance(event, TASK_EVENTS) else None
            for feed in feeds:
                if feed.selection.shows(event, meta):
                    feed.offer((position, event))

    async def _tails(self, redis: Redis, streams: list[str]) -> dict[str, str]:
        """Where each stream ends now: the reader goes on from there."""
        while True:
            try:
                async with redis.pipeline(transaction=False) as pipe:
                    for stream in streams:
                        pipe.xrevrange(stream, count=1)
                    answers: list[list[tuple[str, Any]]] = await pipe.execute()
                return {s: (a[0][0] if a else "0-0") for s, a in zip(streams, answers, strict=True)}
            except REDIS_AWAY as e:
                self._outage.failed(e, during="feed_start")
                await asyncio.sleep(1)


def _decoded(entry_id: str, fields: dict[str, str]) -> AnyEvent | None:
    try:
        return decode(entry_id, fields["data"].encode())
    except (KeyError, EventDecodeError):
        return None


def _is_uuid(text: str) -> bool:
    try:
        UUID(text)
    except ValueError:
        return False
    return True
