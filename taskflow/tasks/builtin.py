"""Tasks every TaskFlow installation ships: handy for smoke tests, demos and benchmarks."""

from __future__ import annotations

import asyncio
from typing import Any

from taskflow.errors import TaskFlowError
from taskflow.tasks.registry import task


class TaskFailedOnPurpose(TaskFlowError):
    """Raised by the ``fail`` task."""


@task
async def echo(**kwargs: Any) -> dict[str, Any]:
    """Returns its keyword arguments."""
    return kwargs


@task
async def sleep(seconds: float = 1.0) -> float:
    """Sleeps ``seconds`` without blocking the worker, then returns them."""
    await asyncio.sleep(seconds)
    return seconds


@task
def fail(message: str = "failed on purpose") -> None:
    """Raises ``TaskFailedOnPurpose(message)``."""
    raise TaskFailedOnPurpose(message)


@task
def noop() -> None:
    """Does nothing: measures the pipeline, not the task."""


@task(isolation="thread")
def noop_thread() -> None:
    """Does nothing, in a thread of the worker (``isolation="thread"``, ADR 0018)."""
