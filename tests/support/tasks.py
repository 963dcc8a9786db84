"""Task functions the suite needs beyond the built-in ones."""

from __future__ import annotations

import os
import signal

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
