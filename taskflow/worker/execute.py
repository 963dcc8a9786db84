"""Running one task function and turning what happened into a ``RunResult``."""

from __future__ import annotations

import asyncio
import time
import traceback
from typing import Any

import msgspec

from taskflow.tasks import TaskDefinition, TaskRun
from taskflow.tasks.context import enter_task, leave_task
from taskflow.tasks.postpone import Postponed
from taskflow.worker.child_pool import ChildPool
from taskflow.worker.decisions import Failed, RunResult, Succeeded, TimedOut
from taskflow.worker.thread_runner import ThreadRunner

_args_decoder = msgspec.json.Decoder(list[Any])
_kwargs_decoder = msgspec.json.Decoder(dict[str, Any])
_encoder = msgspec.json.Encoder()


async def run_task(
    definition: TaskDefinition,
    args: msgspec.Raw,
    kwargs: msgspec.Raw,
    timeout_s: float,
    children: ChildPool,
    threads: ThreadRunner,
    run: TaskRun,
) -> RunResult:
    """Call the function; any exception it raises becomes ``Failed`` with its traceback.

    Async functions run on the worker's loop and are cancelled at the timeout. Sync
    functions run in a child process, killed at the timeout (or on cancel), so even
    ``time.sleep(60)`` really stops; or, declared ``isolation="thread"``, in a thread,
    interrupted between bytecodes (ADR 0018).
    """
    started = time.perf_counter()
    try:
        if definition.is_async:
            token = enter_task(run)
            try:
                return await _run_async(definition, args, kwargs, timeout_s, started)
            finally:
                leave_task(token)
        if definition.isolation == "thread":
            outcome = await threads.call(definition.fn, args, kwargs, timeout_s, run)
        else:
            outcome = await children.call(definition.name, args, kwargs, timeout_s, run)
    except TimeoutError:
        return TimedOut(timeout_s=timeout_s, duration_ms=_ms_since(started))
    if outcome.ok:
        return Succeeded(result=outcome.result, duration_ms=_ms_since(started))
    return Failed(
        error_type=outcome.error_type, error=outcome.error, traceback=outcome.traceback, duration_ms=_ms_since(started)
    )


async def _run_async(
    definition: TaskDefinition, args: msgspec.Raw, kwargs: msgspec.Raw, timeout_s: float, started: float
) -> RunResult:
    # asyncio.timeout, not wait_for: no extra task per run (wait_for cost ~10 % of a
    # no-op task's worker time in a py-spy profile).
    deadline = asyncio.timeout(timeout_s)
    try:
        positional = _args_decoder.decode(args)
        named = _kwargs_decoder.decode(kwargs)
        async with deadline:
            value = await definition.fn(*positional, **named)
        result = msgspec.Raw(_encoder.encode(value))
    except asyncio.CancelledError:
        raise
    except Postponed as e:
        return Failed(
            error_type="Postponed",
            error=str(e) or "postponed",
            traceback="",
            duration_ms=_ms_since(started),
            postpone_s=max(0.0, e.delay_s),
        )
    except TimeoutError as e:
        if deadline.expired():
            raise  # ours: the run outlived timeout_seconds
        return _failed(e, started)  # the task's own TimeoutError is an ordinary failure
    except Exception as e:  # noqa: BLE001 - task code may raise anything; it is recorded, not swallowed
        return _failed(e, started)
    return Succeeded(result=result, duration_ms=_ms_since(started))


def _failed(e: BaseException, started: float) -> Failed:
    return Failed(
        error_type=type(e).__name__,
        error=str(e) or type(e).__name__,
        traceback="".join(traceback.format_exception(e)),
        duration_ms=_ms_since(started),
    )


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
