"""What every command shares: settings from the environment, one-line errors, signals."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn, TypeVar

import click

from taskflow.database import open_pool
from taskflow.errors import ConfigurationError
from taskflow.settings import Settings, load_settings
from taskflow.streams.connection import open_redis
from taskflow.telemetry import configure_logging

T = TypeVar("T")


def fail(message: str) -> NoReturn:
    """One line on stderr and exit 1: the contract for bad configuration."""
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def settings_from_env() -> Settings:
    try:
        settings = load_settings(os.environ)
    except ConfigurationError as e:
        fail(str(e))
    configure_logging(settings.log_level)
    return settings


# Objects allocated, net, before the collector looks at the young ones (CPython: 700).
GC_YOUNG_THRESHOLD = 10_000


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; configuration errors become one line and exit 1."""
    tune_gc()
    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            return runner.run(main)
    except ConfigurationError as e:
        fail(str(e))


def tune_gc() -> None:
    """Workers and projectors allocate per event; with CPython's defaults the collector
    ran every 700 objects and re-scanned everything imported at each full pass (a third
    of the projector's fold time, docs/benchmarks.md). Freeze what start-up built, and
    collect the young generation less often; reference cycles are still collected."""
    gc.collect()  # what start-up dropped, so it is not kept frozen for good
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (ADR 0012): the worker and the projector spend much of
    their CPU in the event loop, and uvloop's is several times cheaper per callback."""
    try:
        import uvloop
    except ImportError:  # not built for this platform (Windows): the default loop
        return None
    return uvloop.new_event_loop


def on_stop_signals(stop: Callable[[], None]) -> None:
    """SIGTERM / SIGINT ask the service to stop cleanly (finish or hand back its work)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)


async def check_connections(settings: Settings, *, postgres: bool = True) -> None:
    """Fail fast, before serving, when Redis or PostgreSQL is not reachable."""
    redis = await open_redis(settings)
    await redis.aclose()
    if postgres:
        pool = await open_pool(settings, min_size=1, max_size=1)
        await pool.close()
