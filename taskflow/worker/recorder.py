"""Batched, ownership-checked event appends.

Each append is its own atomic ``owned_append.lua`` call (invariant 2); the recorder only
sends every call queued meanwhile in one pipeline, so a worker running many short tasks
pays one round trip per batch rather than one per event.
"""

from __future__ import annotations

import asyncio

import msgspec
import structlog
from redis.exceptions import NoScriptError, RedisError

from taskflow.events import AnyEvent, TaskCancelled, TaskSucceeded, TaskTimedOut, encode, tag_of
from taskflow.outage import REDIS_AWAY, Outage
from taskflow.streams.dispatch import HeldDispatch
from taskflow.streams.marker import MarkerState
from taskflow.worker.entry import DispatchEntry
from taskflow.worker.errors import WorkerError
from taskflow.worker.scripts import AppendKind, WorkerScripts

log = structlog.get_logger()
MAX_BATCH = 500
RETRY_DELAY_S = 0.5


class _Pending(msgspec.Struct):
    entry: DispatchEntry
    event: AnyEvent
    kind: AppendKind
    retry: tuple[HeldDispatch, int] | None
    done: asyncio.Future[str | None]


class RecorderFailed(WorkerError):
    """The recorder stopped on an unexpected error (a bug, not Redis being away, which it
    waits out): no outcome can be recorded any more, so the worker must stop."""


class Recorder:
    def __init__(self, scripts: WorkerScripts, consumer: str, outage: Outage) -> None:
        self._scripts = scripts
        self._outage = outage
        self._consumer = consumer
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self.failed: RecorderFailed | None = None

    def record(
        self, entry: DispatchEntry, event: AnyEvent, kind: AppendKind, retry: tuple[HeldDispatch, int] | None = None
    ) -> asyncio.Future[str | None]:
        """Queue the append of ``event`` while we own ``entry``, at once; the future answers
        the new event id, or None if not ours. Queued on the call, not on the await, so a
        caller can queue more (the next start) into the same flush before it waits.
        Raises ``RecorderFailed`` once the recorder has stopped on an error."""
        if self.failed is not None:
            raise self.failed
        done: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(entry, event, kind, retry, done))
        return done

    def submit(self, entry: DispatchEntry, event: AnyEvent, kind: AppendKind) -> None:
        """Queue an append nobody waits for (log lines, progress)."""
        if self.failed is not None:
            return
        done: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        done.add_done_callback(_unwatched)
        self._queue.put_nowait(_Pending(entry, event, kind, None, done))

    async def run(self) -> None:
        """Flush loop; runs until cancelled, after which nothing queued is left behind.
        On an unexpected error every waiting caller gets ``RecorderFailed``, and so does
        every later one."""
        batch: list[_Pending] = []
        try:
            while True:
                batch = [await self._queue.get()]
                # One turn of the loop first: the tasks the last answers woke queue their
                # next appends (a finished slot's next start) into this flush.
                await asyncio.sleep(0)
                while len(batch) < MAX_BATCH and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                await self._flush_until_sent(batch)
                batch = []
        except Exception as e:
            self.failed = RecorderFailed(f"the recorder stopped: {e!r}")
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            for item in batch:
                if not item.done.done():
                    item.done.set_exception(self.failed)
            raise self.failed from e

    async def drain(self) -> None:
        """Send whatever is still queued (used at shutdown, after the loop stopped)."""
        if self.failed is not None:
            return
        batch: list[_Pending] = []
        while not self._queue.empty():
            batch.append(self._queue.get_nowait())
        if batch:
            await self._flush_until_sent(batch)

    async def _flush_until_sent(self, batch: list[_Pending]) -> None:
        # An outcome that is not recorded is lost work, so keep trying while Redis is away.
        # Each call in the pipeline stands alone (no MULTI): only the calls that failed are
        # sent again; the others ran and are answered. Resending a call is safe because the
        # script re-checks ownership, and an acknowledged entry is no longer ours. (A lost
        # reply to a pipeline that did run may still repeat a TaskStarted: harmless, the
        # fold takes the last.)
        pending = batch
        while pending:
            try:
                answers = await self._flush(pending)
            except REDIS_AWAY as e:
                self._outage.failed(e, during="record", batch=len(pending))
                await asyncio.sleep(RETRY_DELAY_S)
                continue
            except RedisError as e:
                log.warning("record_failed_retrying", error=str(e), batch=len(pending))
                await asyncio.sleep(RETRY_DELAY_S)
                continue
            self._outage.succeeded()
            failed = [(item, answer) for item, answer in zip(pending, answers, strict=True) if _resend(item, answer)]
            pending = [item for item, _ in failed]
            if pending:
                await self._recover([answer for _, answer in failed])

    async def _recover(self, errors: list[object]) -> None:
        """Before sending failed calls again: reload the scripts if the server lost them
        (restart, SCRIPT FLUSH), else wait a little."""
        if any(isinstance(e, NoScriptError) for e in errors):
            log.warning("record_reloading_scripts", calls=len(errors))
            try:
                await self._scripts.load()
                return
            except (RedisError, OSError) as e:
                log.warning("record_script_load_failed", error=str(e))
        else:
            log.warning("record_calls_failed_retrying", calls=len(errors), error=str(errors[0]))
        await asyncio.sleep(RETRY_DELAY_S)

    async def _flush(self, batch: list[_Pending]) -> list[object]:
        async with self._scripts.redis.pipeline(transaction=False) as pipe:
            for item in batch:
                entry = item.entry
                await self._scripts.owned_append(
                    partition=entry.partition,
                    dispatch_stream=entry.stream,
                    consumer=self._consumer,
                    entry_id=entry.entry_id,
                    event_type=tag_of(item.event),
                    payload=encode(item.event),
                    kind=item.kind,
                    task_id=entry.task.aggregate_id,
                    final_state=final_state_of(item.event),
                    retry=item.retry,
                    pipeline=pipe,
                )
            # Errors come back in place of answers, so the calls that did run are not resent.
            answers: list[object] = await pipe.execute(raise_on_error=False)
        return answers


def _unwatched(done: asyncio.Future[str | None]) -> None:
    # Nobody awaits a submit(): take its exception, so asyncio does not report it as lost.
    if not done.cancelled():
        done.exception()


def _resend(item: _Pending, answer: object) -> bool:
    """Answer the caller, unless the call failed and must be sent again."""
    if isinstance(answer, Exception):
        return True
    if not item.done.done():
        item.done.set_result(str(answer) if answer else None)
    return False


def final_state_of(event: AnyEvent) -> MarkerState:
    """The task state a finishing event leaves in the task marker (see submit.lua)."""
    match event:
        case TaskSucceeded():
            return "succeeded"
        case TaskTimedOut():
            return "timed_out"
        case TaskCancelled():
            return "cancelled"
        case _:
            return "failed"
