"""The worker: runs the tasks it holds within its capacity and records their outcomes.

Roles live in their own modules (``claim``: reading new entries; ``reclaim``: taking over
dead workers' entries; ``lease``: renewing ours; ``control``: pause and cancel orders;
``recorder``: atomic outcome appends; ``execute``: calling task code; ``decisions``: what
to append); this one wires them, runs each task and owns shutdown.
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

import taskflow
from taskflow.events import Priority, WorkerStarted, WorkerStopped
from taskflow.outage import REDIS_AWAY, Outage
from taskflow.settings import Settings
from taskflow.streams.groups import append_event, ensure_groups
from taskflow.streams.keyspace import Keyspace
from taskflow.tasks import TaskRun, UnknownTaskError, get_task
from taskflow.tasks.context import Note
from taskflow.worker import decisions, heartbeat
from taskflow.worker.child_pool import ChildPool
from taskflow.worker.claim import Claimer
from taskflow.worker.control import Control
from taskflow.worker.entry import DispatchEntry
from taskflow.worker.execute import run_task
from taskflow.worker.inflight import InFlight
from taskflow.worker.lease import renew_leases_forever
from taskflow.worker.reclaim import RECLAIM_EVERY_S, Reclaimer, reclaim_forever
from taskflow.worker.recorder import Recorder
from taskflow.worker.scripts import WorkerScripts
from taskflow.worker.thread_runner import ThreadRunner

log = structlog.get_logger()
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
        self.threads = ThreadRunner()
        self.processed = 0
        self._stopping = asyncio.Event()
        # Every dispatch stream we serve -> its partition.
        self._streams = {self.keyspace.dispatch(p, q): p for p in self.keyspace.all_partitions for q in queues}
        self.claimer = Claimer(
            redis=redis,
            keyspace=self.keyspace,
            scripts=self.scripts,
            consumer=self.id,
            queues=queues,
            inflight=self.inflight,
            outage=self.redis_outage,
            stopping=self._stopping,
            start_from_backlog=self._start_from_backlog,
        )
        self.reclaimer = Reclaimer(
            claimer=self.claimer,
            recorder=self.recorder,
            inflight=self.inflight,
            consumer=self.id,
            max_deliveries=settings.max_deliveries,
            partition_of=self._streams.__getitem__,
            start_from_backlog=self._start_from_backlog,
        )
        self.control = Control(
            redis=redis,
            keyspace=self.keyspace,
            consumer=self.id,
            inflight=self.inflight,
            outage=self.redis_outage,
            lease_ms=settings.lease_ms,
            start_from_backlog=self._start_from_backlog,
        )

    def stop(self) -> None:
        """Stop reading; in-flight work finishes, then ``run`` returns."""
        self._stopping.set()

    async def run(self) -> None:
        await ensure_groups(self.redis, self.keyspace)
        await self.scripts.load()  # the recorder sends EVALSHA only
        self.children.start()  # imports the task modules once, while we connect and read
        await append_event(self.redis, self.keyspace, self._started_event())
        log.info("worker_started", worker_id=self.id, capacity=self.inflight.capacity, queues=list(self.queues))
        recorder = asyncio.create_task(self.recorder.run())
        recorder.add_done_callback(self._on_recorder_stopped)
        background = [
            recorder,
            asyncio.create_task(self.control.follow_orders_forever()),
            asyncio.create_task(
                heartbeat.beat_forever(
                    self.redis, self.keyspace, self.settings, self.id, self.inflight, self.redis_outage
                )
            ),
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
                    self.reclaimer.take,
                    lambda stream: self.keyspace.starts(self._streams[stream]),
                    self.redis_outage,
                )
            ),
        ]
        try:
            await asyncio.gather(*(self.claimer.read_partition(p) for p in self.keyspace.all_partitions))
            await self._finish_in_flight()
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await self.recorder.drain()
            self.children.close()
            self.threads.close()
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
            if entry.entry_id not in self.control.cancel_requested:
                log.warning("task_cancelled_lease_lost")
                raise
            # A user's cancel, not ours: record it, then carry on serving.
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
            await self._record_cancelled(entry)
        except Exception:
            log.exception("process_failed")
        finally:
            self.control.cancel_requested.discard(entry.entry_id)
            self.inflight.remove(entry.entry_id)
            self._start_from_backlog()

    async def _run_and_record(self, entry: DispatchEntry) -> None:
        # The start may ack the entry (a task cancelled while in line); it checks ownership
        # itself, so while it is in flight a renewal's "not pending" is not a lost lease.
        self.inflight.settling.add(entry.entry_id)
        started = await self.recorder.record(entry, decisions.started(entry, self.id, _now()), "start")
        if started is None:
            log.warning("entry_lost_before_start")
            return
        if started == CANCELLED_BEFORE_START:
            log.info("entry_dropped_cancelled")
            return
        self.inflight.settling.discard(entry.entry_id)  # running: a lost lease must stop it
        try:
            definition = get_task(entry.task.task_name)
        except UnknownTaskError:
            result: decisions.RunResult = decisions.unknown_task(entry.task.task_name)
        else:
            run = TaskRun(
                entry.task.aggregate_id,
                entry.runs_begun + 1,
                lambda note: self._note(entry, note),
                retry_count=entry.retry_count,
                max_retries=entry.task.max_retries,
            )
            result = decisions.storable(
                await run_task(
                    definition,
                    entry.task.args,
                    entry.task.kwargs,
                    entry.task.timeout_seconds,
                    self.children,
                    self.threads,
                    run,
                )
            )
        decided = decisions.decide_outcome(entry, self.id, result, _now(), random.uniform(-1, 1))
        self.inflight.settling.add(entry.entry_id)
        recorded = self.recorder.record(entry, decided.event, decided.kind, decided.held)
        # The code has returned: its slot goes to the next entry now, whose start then
        # shares a flush with this outcome (one round trip per task, not two, at low
        # concurrency). The entry stays held, its lease renewed, until the outcome is in.
        self.inflight.finishing.add(entry.entry_id)
        self._start_from_backlog()
        if await recorded is None:
            # Another worker took the entry over; its outcome will be the one recorded.
            log.warning("outcome_discarded_lease_lost")
            return
        self.processed += 1
        log.debug("task_finished", outcome=type(decided.event).__name__)

    def _note(self, entry: DispatchEntry, note: Note) -> None:
        """A log line or progress step from task code: recorded without waiting for it."""
        self.recorder.submit(
            entry, decisions.noted(entry, self.id, note, _now()), "progress" if note.kind == "progress" else "note"
        )

    async def _record_cancelled(self, entry: DispatchEntry) -> None:
        event = decisions.cancelled(entry, self.id, "cancelled while running", _now())
        self.inflight.settling.add(entry.entry_id)
        if await self.recorder.record(entry, event, "finish") is not None:
            log.info("task_cancelled_while_running")

    def _lost(self, entry_id: str) -> None:
        running = self.inflight.running.get(entry_id)
        if running is not None:
            running.cancel()
        self.inflight.remove(entry_id)

    async def _finish_in_flight(self) -> None:
        """Let running tasks finish; hand entries we never started back at once."""
        await self.control.hand_back(list(self.inflight.backlog))
        running = list(self.inflight.running.values())
        if running:
            log.info("worker_draining", in_flight=len(running))
            await asyncio.gather(*running, return_exceptions=True)

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
