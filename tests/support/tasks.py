"""Task functions the suite needs beyond the built-in ones."""

from __future__ import annotations

import os
import signal

from taskflow.tasks import task


@task
def die_hard() -> None:
    """Kills the worker process running it: the poison message of the crash tests."""
    os.kill(os.getpid(), signal.SIGKILL)


@task
def blocking_sleep(seconds: float) -> float:
    """Blocks its thread, as careless sync task code does."""
    import time

    time.sleep(seconds)
    return seconds
