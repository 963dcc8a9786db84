"""The worker: reads dispatch streams, runs tasks within its capacity, records outcomes.

Roles live in their own modules (``lease``: renew and reclaim; ``recorder``: atomic
outcome appends; ``execute``: calling task code); this one wires them and owns shutdown.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
from datetime import UTC, datetime
from uuid import uuid4

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from redis.typing import KeyT, StreamIdT

import taskflow
from taskflow.events import DispatchRejected, Priority, WorkerStarted, WorkerStopped, encode, tag_of
from taskflow.outage import REDIS_AWAY, Outage
from taskflow.settings import Settings
from taskflow.streams.groups import append_event, ensure_groups
from taskflow.streams.keyspace import WORKERS_GROUP, Keyspace
from taskflow.tasks import TaskRun, UnknownTaskError, get_task
from taskflow.tasks.context import Note
from taskflow.worker import heartbeat, orders, outcome
from taskflow.worker.child_pool import ChildPool
from taskflow.worker.entry import DispatchEntry, parse_entry
from taskflow.worker.errors import MalformedDispatchEntry
from taskflow.worker.execute import run_task
from taskflow.worker.inflight import InFlight
from taskflow.worker.lease import reclaim_forever, renew_leases_forever
from taskflow.worker.recorder import Recorder
from taskflow.worker.scripts import ReclaimedEntry, WorkerScripts

log = structlog.get_logger()
READ_BLOCK_MS = 1000
# With a backlog held but nothing new on the streams, look again after a start or this.
NOTHING_NEW_WAIT_S = 0.1
# Checking for stale entries is cheap (XPENDING IDLE); doing it often lets entries the
# coordinator hands off from a dead worker move on within a second.
RECLAIM_EVERY_S = 1.0
# A running task is stopped within this (plus the kill) of its cancel request.
CANCEL_POLL_S = 0.5
# What owned_append.lua answers a start for a task cancelled while it waited in line.
CANCELLED_BEFORE_START = "cancelled"


def _now() -> datetime:
    return datetime.now(UTC)


class Worker:
    def __init__(
        self,
        settings: Settings,
        redis: Redis,
        *,
        concurrency: int,
        queues: tuple[Priority, ...],
        task_modules: tuple[str, ...] = (),
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.id = uuid4().hex
        self.queues = queues
        self.keyspace = Keyspace.of(settings)
        self.scripts = WorkerScripts(redis, self.keyspace)
        # Shared by every loop that talks to Redis: one line when it goes, one when back.
        self.redis_outage = Outage("redis")
        self.recorder = Recorder(self.scripts, self.id, self.redis_outage)
        self.inflight = InFlight(concurrency)
        self.children = ChildPool(concurrency, (*settings.task_modules, *task_modules))
        self.processed = 0
        self._stopping = asyncio.Event()
        self._housekeeping: set[asyncio.Task[None]] = set()
        self._cancel_requested: set[str] = set()
        # Every dispatch stream we serve -> (rank of its priority, its partition).
        self._streams = {
            self.keyspace.dispatch(p, q): (rank, p)
            for p in self.keyspace.all_partitions
            for rank, q in enumerate(queues)
        }

    def stop(self) -> None:
        """Stop reading; in-flight work finishes, then ``run`` returns."""
        self._stopping.set()

    async def run(self) -> None:
        await ensure_groups(self.redis, self.keyspace)
        await self.scripts.load()  # the recorder sends EVALSHA only
        await append_event(self.redis, self.keyspace, self._started_event())
        log.info("worker_started", worker_id=self.id, capacity=self.inflight.capacity, queues=list(self.queues))
        recorder = asyncio.create_task(self.recorder.run())
        recorder.add_done_callback(self._on_recorder_stopped)
        background = [
            recorder,
            asyncio.create_task(self._follow_orders()),
            asyncio.create_task(self._beat_forever()),
            asyncio.create_task(
                renew_leases_forever(
                    self.scripts, self.id, self.inflight, self.settings.lease_seconds / 3, self._lost, self.redis_outage
                )
            ),
            asyncio.create_task(
                reclaim_forever(
                    self.scripts,
                    self.id,
                    list(self._streams),
                    self.inflight,
                    self.settings.lease_ms,
                    RECLAIM_EVERY_S,
                    self._take_reclaimed,
                    lambda stream: self.keyspace.starts(self._streams[stream][1]),
                    self.redis_outage,
                )
            ),
        ]
        try:
            await asyncio.gather(*(self._read_partition(p) for p in self.keyspace.all_partitions))
            await self._finish_in_flight()
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await self.recorder.drain()
            self.children.close()
        await self._leave()
        log.info("worker_stopped", worker_id=self.id, processed=self.processed)
        if self.recorder.failed is not None:
            raise self.recorder.failed  # exit non-zero: a supervisor restarts the worker

    async def _leave(self) -> None:
        """Deregister and record the stop. With Redis away the worker still exits: the
        coordinator declares it dead after its silence and hands on what it held."""
        try:
            await heartbeat.leave(self.redis, self.keyspace, self.id)
            await append_event(self.redis, self.keyspace, self._stopped_event())
        except REDIS_AWAY as e:
            log.warning("worker_left_unrecorded", worker_id=self.id, error=repr(e))

    def _on_recorder_stopped(self, recorder: asyncio.Task[None]) -> None:
        if not recorder.cancelled() and recorder.exception() is not None:
            # Entries whose outcome could not be recorded stay pending and are reclaimed
            # by another worker once their lease lapses (we stop renewing it).
            log.error("recorder_failed_worker_stopping", error=str(recorder.exception()))
            self.stop()

    async def _read_partition(self, partition: int) -> None:
        levels = {self.keyspace.dispatch(partition, q): q for q in self.queues}
        while not self._stopping.is_set():
            # Keep up to `capacity` entries of every level waiting here, so the weighted
            # picker always sees each level that has work (else a drained backlog would
            # hand out starts in equal turns).
            wanted = self.inflight.wanted_per_level(self.queues)
            if not wanted:
                await self.inflight.wait_for_free_slot(READ_BLOCK_MS / 1000)
                continue
            streams: dict[KeyT, StreamIdT] = {s: ">" for s, q in levels.items() if q in wanted}
            # Block only with nothing waiting here; else a read of empty streams would
            # stall while the backlog still has work for freed slots.
            block = None if self.inflight.backlog else READ_BLOCK_MS
            try:
                answer = await self.redis.xreadgroup(
                    WORKERS_GROUP, self.id, streams, count=min(wanted.values()), block=block
                )
            except REDIS_AWAY as e:
                self.redis_outage.failed(e, during="read")
                await asyncio.sleep(1)
                continue
            except RedisError as e:
                log.warning("read_failed", error=str(e))
                await asyncio.sleep(1)
                continue
            self.redis_outage.succeeded()
            for stream, entries in answer or []:
                for entry_id, fields in entries:
                    self._admit_raw(stream, partition, entry_id, fields, delivery_count=1, runs_begun=0)
            self._start_from_backlog()
            if not answer and block is None:
                await self.inflight.wait_for_change(NOTHING_NEW_WAIT_S)

    def _admit_raw(
        self,
        stream: str,
        partition: int,
        entry_id: str,
        fields: dict[str, str],
        delivery_count: int,
        runs_begun: int,
        *,
        startable: bool = True,
    ) -> DispatchEntry | None:
        try:
            entry = parse_entry(
                stream=stream,
                entry_id=entry_id,
                partition=partition,
                delivery_count=delivery_count,
                runs_begun=runs_begun,
                fields=fields,
            )
        except MalformedDispatchEntry as e:
            log.error("malformed_dispatch_entry", stream=stream, entry_id=entry_id, error=str(e))
            rejection = outcome.rejected(
                stream=stream,
                entry_id=entry_id,
                partition=partition,
                keyspace=self.keyspace,
                fields=fields,
                error=str(e),
                worker_id=self.id,
                now=_now(),
            )
            reject = asyncio.create_task(self._reject(rejection))
            self._housekeeping.add(reject)
            reject.add_done_callback(self._housekeeping.discard)
            return None
        self.inflight.add(entry)
        if startable:
            self.inflight.backlog.add(entry)
        return entry

    async def _reject(self, rejection: DispatchRejected) -> None:
        """Take the entry off its stream and record it whole, in one step (owned_append):
        it can never decode, so retrying it would only loop, and dropping it would lose
        it. Redis away: the entry stays pending, is reclaimed later and rejected again."""
        try:
            await self.scripts.owned_append(
                partition=rejection.partition,
                dispatch_stream=rejection.stream,
                consumer=self.id,
                entry_id=rejection.entry_id,
                event_type=tag_of(rejection),
                payload=encode(rejection),
                kind="finish",
                task_id=rejection.task_id or "",
                final_state="failed" if rejection.task_id else "",
            )
        except (RedisError, OSError) as e:
            log.warning("dispatch_rejection_failed", entry_id=rejection.entry_id, error=str(e))

    def _start_from_backlog(self) -> None:
        """Start held entries by weighted priority (worker/priority.py) while running < capacity."""
        while not self._stopping.is_set() and (entry := self.inflight.next_to_start()) is not None:
            self.inflight.running[entry.entry_id] = asyncio.create_task(self._process(entry))

    async def _process(self, entry: DispatchEntry) -> None:
        task = entry.task
        # This runs as its own asyncio task, in its own copy of the context: what is bound
        # here (for every log line, the task code's included) ends with it, unreset.
        structlog.contextvars.bind_contextvars(task_id=task.aggregate_id, correlation_id=task.correlation_id)
        try:
            await self._run_and_record(entry)
        except asyncio.CancelledError:
            if entry.entry_id not in self._cancel_requested:
                log.warning("task_cancelled_lease_lost")
                raise
            # A user's cancel, not ours: record it, then carry on serving.
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
            await self._record_cancelled(entry)
        except Exception:
            log.exception("process_failed")
        finally:
            self._cancel_requested.discard(entry.entry_id)
            self.inflight.remove(entry.entry_id)
            self._start_from_backlog()

    async def _run_and_record(self, entry: DispatchEntry) -> None:
        started = await self.recorder.record(entry, outcome.started(entry, self.id, _now()), "start")
        if started is None:
            log.warning("entry_lost_before_start")
            return
        if started == CANCELLED_BEFORE_START:
            log.info("entry_dropped_cancelled")
            return
        try:
            definition = get_task(entry.task.task_name)
        except UnknownTaskError:
            result: outcome.RunResult = outcome.unknown_task(entry.task.task_name)
        else:
            run = TaskRun(entry.task.aggregate_id, entry.runs_begun + 1, lambda note: self._note(entry, note))
            result = outcome.storable(
                await run_task(
                    definition, entry.task.args, entry.task.kwargs, entry.task.timeout_seconds, self.children, run
                )
            )
        decided = outcome.decide_outcome(entry, self.id, result, _now(), random.uniform(-1, 1))
        if await self.recorder.record(entry, decided.event, decided.kind, decided.held) is None:
            # Another worker took the entry over; its outcome will be the one recorded.
            log.warning("outcome_discarded_lease_lost")
            return
        self.processed += 1
        log.debug("task_finished", outcome=type(decided.event).__name__)

    async def _take_reclaimed(self, stream: str, claimed: ReclaimedEntry) -> None:
        partition = self._streams[stream][1]
        # Held (its lease renewed) but not startable until its TaskReclaimed is recorded;
        # a suspect is marked at once, so nothing else starts beside it meanwhile.
        entry = self._admit_raw(
            stream,
            partition,
            claimed.entry_id,
            claimed.fields,
            claimed.delivery_count,
            claimed.runs_begun,
            startable=False,
        )
        if entry is None:
            return
        decision = outcome.decide_reclaimed(claimed.runs_begun, self.settings.max_deliveries)
        if isinstance(decision, outcome.DeadLetter):
            dead = outcome.dead_lettered(entry, self.id, decision.reason, claimed.previous_owner, _now())
            await self.recorder.record(entry, dead, "finish")
            self.inflight.remove(entry.entry_id)
            log.warning("task_dead_lettered", task_id=entry.task.aggregate_id, reason=decision.reason)
            return
        if outcome.is_suspect(claimed.runs_begun):
            self.inflight.suspects.add(entry.entry_id)
        event = outcome.reclaimed(entry, self.id, claimed.previous_owner, claimed.idle_ms, _now())
        if await self.recorder.record(entry, event, "note") is None:
            self.inflight.remove(entry.entry_id)
            return
        if not self.inflight.holds(entry.entry_id):
            return  # its lease was lost meanwhile
        self.inflight.backlog.add(entry)
        log.info("task_reclaimed", task_id=entry.task.aggregate_id, from_worker=claimed.previous_owner)
        self._start_from_backlog()

    def _note(self, entry: DispatchEntry, note: Note) -> None:
        """A log line or progress step from task code: recorded without waiting for it."""
        self.recorder.submit(entry, outcome.noted(entry, self.id, note, _now()), "note")

    async def _record_cancelled(self, entry: DispatchEntry) -> None:
        event = outcome.cancelled(entry, self.id, "cancelled while running", _now())
        if await self.recorder.record(entry, event, "finish") is not None:
            log.info("task_cancelled_while_running")

    async def _beat_forever(self) -> None:
        while True:
            try:
                await heartbeat.beat(self.redis, self.keyspace, self.settings, self.id, self.inflight)
            except REDIS_AWAY as e:
                self.redis_outage.failed(e, during="heartbeat")
            except RedisError as e:
                log.warning("heartbeat_failed", error=str(e))
            else:
                self.redis_outage.succeeded()
            await asyncio.sleep(self.settings.heartbeat_seconds)

    async def _follow_orders(self) -> None:
        """Poll for pause / resume and for cancels of running tasks."""
        while True:
            await asyncio.sleep(CANCEL_POLL_S)
            try:
                await self._apply_pause(await orders.pause_ordered(self.redis, self.keyspace, self.id))
                running = [e for e in self.inflight.entries() if e.entry_id in self.inflight.running]
                cancelled = await orders.cancel_requested(self.redis, self.keyspace, running)
            except REDIS_AWAY as e:
                self.redis_outage.failed(e, during="order_poll")
                continue
            except RedisError as e:
                log.warning("order_poll_failed", error=str(e))
                continue
            self.redis_outage.succeeded()
            for entry in cancelled:
                task = self.inflight.running.get(entry.entry_id)
                if task is not None and entry.entry_id not in self._cancel_requested:
                    self._cancel_requested.add(entry.entry_id)
                    task.cancel()

    async def _apply_pause(self, paused: bool) -> None:
        if paused != self.inflight.paused:
            self.inflight.paused = paused
            log.info("worker_paused" if paused else "worker_resumed")
        if paused and self.inflight.backlog:
            # Held but not started counts as new work: let live workers have it now.
            await self._hand_back(list(self.inflight.backlog))
        elif not paused:
            self._start_from_backlog()

    def _lost(self, entry_id: str) -> None:
        running = self.inflight.running.get(entry_id)
        if running is not None:
            running.cancel()
        self.inflight.remove(entry_id)

    async def _finish_in_flight(self) -> None:
        """Let running tasks finish; hand entries we never started back at once."""
        await self._hand_back(list(self.inflight.backlog))
        running = list(self.inflight.running.values())
        if running:
            log.info("worker_draining", in_flight=len(running))
            await asyncio.gather(*running, return_exceptions=True)

    async def _hand_back(self, entries: list[DispatchEntry]) -> None:
        # Marking them idle for a whole lease lets any live worker's XAUTOCLAIM take them
        # now instead of after a lease; JUSTID leaves the delivery count alone. Each leaves
        # the backlog only once handed back: if Redis fails midway, the rest stay held.
        for entry in entries:
            self.inflight.backlog.remove(entry)  # not to be started while we wait
            try:
                await self.redis.xclaim(
                    entry.stream,
                    WORKERS_GROUP,
                    self.id,
                    0,
                    [entry.entry_id],
                    idle=self.settings.lease_ms,
                    justid=True,
                )
            except BaseException:
                self.inflight.backlog.add(entry)  # still ours: to start, or hand back later
                raise
            self.inflight.remove(entry.entry_id)

    def _started_event(self) -> WorkerStarted:
        return WorkerStarted(
            aggregate_id=self.id,
            occurred_at=_now(),
            correlation_id=self.id,
            actor=self.id,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            capacity=self.inflight.capacity,
            queues=tuple(self.queues),
            version=taskflow.__version__,
        )

    def _stopped_event(self) -> WorkerStopped:
        return WorkerStopped(
            aggregate_id=self.id,
            occurred_at=_now(),
            correlation_id=self.id,
            actor=self.id,
            reason="shutdown",
            processed=self.processed,
        )
