"""Blocking calls for sync code over TaskFlow's async clients (the producer's
``submit_sync``, ``taskflow.client.Client``): each runs its coroutine on one private event
loop in a daemon thread, so sync callers share connections and need no loop of their own."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

from taskflow.errors import TaskFlowError

T = TypeVar("T")
_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


class SyncCallInLoop(TaskFlowError):
    """A blocking call from inside a running event loop would stall that loop: ``await``
    the async form there instead."""


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on the private loop and wait for its answer."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        coroutine.close()
        raise SyncCallInLoop("a blocking TaskFlow call inside a running event loop: await the async form instead")
    return asyncio.run_coroutine_threadsafe(coroutine, _private_loop()).result()


def iterate_sync(iterator: AsyncIterator[T]) -> Iterator[T]:
    """An async iterator, pulled one item at a time through ``run_sync``."""
    while True:
        try:
            yield run_sync(_next(iterator))
        except StopAsyncIteration:
            return


async def _next(iterator: AsyncIterator[T]) -> T:
    return await anext(iterator)


def _private_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="taskflow-sync", daemon=True).start()
            _loop = loop
        return _loop
