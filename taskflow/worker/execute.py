"""Running one task function and turning what happened into a ``RunResult``."""

from __future__ import annotations

import asyncio
import time
import traceback
from typing import Any

import msgspec

from taskflow.tasks import TaskDefinition
from taskflow.worker.outcome import Failed, RunResult, Succeeded

_args_decoder = msgspec.json.Decoder(list[Any])
_kwargs_decoder = msgspec.json.Decoder(dict[str, Any])
_encoder = msgspec.json.Encoder()


async def run_task(definition: TaskDefinition, args: msgspec.Raw, kwargs: msgspec.Raw, timeout_s: float) -> RunResult:
    """Call the function; any exception it raises becomes ``Failed`` with its traceback.

    Sync functions run in a thread so the event loop keeps renewing leases meanwhile.
    (A thread cannot be killed: hard timeouts for blocking sync code come with the
    task-lifecycle issue, which runs them in a child process.)
    """
    started = time.perf_counter()
    try:
        positional = _args_decoder.decode(args)
        named = _kwargs_decoder.decode(kwargs)
        if definition.is_async:
            value = await asyncio.wait_for(definition.fn(*positional, **named), timeout_s)
        else:
            value = await asyncio.wait_for(asyncio.to_thread(definition.fn, *positional, **named), timeout_s)
        result = msgspec.Raw(_encoder.encode(value))
    except asyncio.CancelledError:
        raise
    except Exception as e:  # noqa: BLE001 - task code may raise anything; it is recorded, not swallowed
        return Failed(
            error_type=type(e).__name__,
            error=str(e) or type(e).__name__,
            traceback="".join(traceback.format_exception(e)),
            duration_ms=_ms_since(started),
        )
    return Succeeded(result=result, duration_ms=_ms_since(started))


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
