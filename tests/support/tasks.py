"""Task functions the suite needs beyond the built-in ones."""

from __future__ import annotations

import os
import signal
from datetime import date, timedelta
from typing import Any

from taskflow.tasks import task


@task
async def die_hard() -> None:
    """Kills the worker process running it (async tasks run in the worker itself): the
    poison message of the crash tests."""
    os.kill(os.getpid(), signal.SIGKILL)


@task
def exit_process() -> None:
    """Takes down the child process a sync task runs in."""
    os._exit(3)


@task
def blocking_sleep(seconds: float) -> float:
    """Blocks its thread, as careless sync task code does."""
    import time

    time.sleep(seconds)
    return seconds


@task
async def chatty_async(steps: int = 2) -> int:
    """Logs and reports progress from the worker's loop."""
    from taskflow.tasks import current_task

    run = current_task()
    for i in range(steps):
        run.log("INFO", f"step {i}", step=i)
        run.progress(100 * (i + 1) / steps, f"{i + 1}/{steps}")
    return steps


@task
def chatty_sync(steps: int = 2) -> int:
    """The same from a child process."""
    from taskflow.tasks import current_task

    run = current_task()
    for i in range(steps):
        run.log("WARNING", f"step {i}", step=i)
        run.progress(100 * (i + 1) / steps, f"{i + 1}/{steps}")
    return steps


@task
async def raise_timeout_error() -> None:
    """Task code whose own call timed out: a failure of the task, not of its deadline."""
    raise TimeoutError("upstream took too long")


@task
async def nul_result() -> dict[str, str]:
    """Returns what PostgreSQL cannot store (ADR 0014)."""
    return {"s": "a\x00b"}


@task
async def nul_diagnostics() -> None:
    """Logs, reports progress and fails with NULs in every text."""
    from taskflow.tasks import current_task

    run = current_task()
    run.log("INFO", "line\x00one", **{"key\x00": "v\x00"})
    run.progress(50, "half\x00way")
    raise ValueError("bad\x00value")


@task
async def typed_arguments(  # type: ignore[no-untyped-def]
    count: int,
    ratio: float = 0.5,
    *labels: str,
    tags: list[str] | None = None,
    on: date | None = None,
    loose=None,
    anything: Any = None,
    **extra: int,
) -> None:
    """Annotated every way the gateway checks against at submit time."""


# How many loop turns ``spin_thread`` made, per task id: read by the test that runs the
# worker in its own process, to see the thread really stop.
SPINS: dict[str, int] = {}


@task(isolation="thread")
def spin_thread(seconds: float = 60.0) -> int:
    """Busy Python code in a worker thread that swallows every Exception, as careless code
    does: only an interrupt that is not an Exception stops it."""
    import time

    from taskflow.tasks import current_task

    task_id = current_task().task_id
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            SPINS[task_id] = SPINS.get(task_id, 0) + 1
        except Exception:  # noqa: BLE001 - on purpose
            continue
    return SPINS[task_id]


# The same from a worker thread (isolation="thread").
chatty_thread = task(name="chatty_thread", isolation="thread")(chatty_sync)


@task
async def add_numbers(a: int, b: int) -> int:
    """The producer's typed round trip."""
    return a + b


@task
def day_after(day: str) -> date:
    """A result that travels as JSON text and converts back to its annotation. (The
    argument is text: workers pass arguments as JSON types, ADR 0015.)"""
    return date.fromisoformat(day) + timedelta(days=1)
