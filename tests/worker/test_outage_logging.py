"""A worker that loses Redis logs the outage once and the recovery once, then goes on."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from structlog.testing import capture_logs

from taskflow.dev.redis_server import start_redis
from taskflow.settings import Settings
from taskflow.streams.connection import open_redis
from tests.support.stack import running_worker
from tests.support.waiting import eventually

OUTAGE_S = 3.0


@pytest.fixture
def redis_dir() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="taskflow-outage-redis-"))
    yield base
    shutil.rmtree(base, ignore_errors=True)


async def test_worker_logs_a_redis_outage_once_and_its_recovery_once(settings: Settings, redis_dir: Path) -> None:
    """A private redis-server is stopped for a few seconds, long enough for the worker's
    read, heartbeat and order loops to fail several times each, then started again on
    the same port and data."""
    server = start_redis(redis_dir)
    port = int(server.url.rsplit(":", 1)[1].split("/")[0])
    settings = msgspec.structs.replace(settings, redis_url=server.url)
    redis = await open_redis(settings)

    with capture_logs() as logs:

        async def logged(name: str) -> list[dict[str, object]]:
            return [entry for entry in logs if entry["event"] == name]

        try:
            async with running_worker(settings, redis):
                await eventually(lambda: logged("worker_started"))
                server.stop()
                await eventually(lambda: logged("dependency_unavailable"), timeout_s=10)
                await asyncio.sleep(OUTAGE_S)  # the outage itself: retries keep failing
                server = start_redis(redis_dir, port=port)
                await eventually(lambda: logged("dependency_recovered"), timeout_s=30)
        finally:
            await redis.aclose()
            server.stop()

    unavailable, recovered = await logged("dependency_unavailable"), await logged("dependency_recovered")
    assert len(unavailable) == 1 and unavailable[0]["dependency"] == "redis", unavailable
    assert len(recovered) == 1 and float(str(recovered[0]["outage_s"])) >= OUTAGE_S, recovered
    for per_retry in (
        "read_failed",
        "heartbeat_failed",
        "order_poll_failed",
        "reclaim_failed",
        "lease_renewal_failed",
        "record_failed_retrying",
    ):
        assert not await logged(per_retry)


async def test_a_worker_stopped_while_redis_is_down_exits_cleanly(settings: Settings, redis_dir: Path) -> None:
    """It cannot deregister; it says so once and exits, instead of dying with a traceback
    (the coordinator declares it dead after its silence)."""
    server = start_redis(redis_dir)
    settings = msgspec.structs.replace(settings, redis_url=server.url)
    redis = await open_redis(settings)
    with capture_logs() as logs:
        try:
            async with running_worker(settings, redis):
                await eventually(lambda: _has(logs, "worker_started"))
                server.stop()
                await eventually(lambda: _has(logs, "dependency_unavailable"), timeout_s=10)
        finally:
            await redis.aclose()
            server.stop()
    assert await _has(logs, "worker_left_unrecorded") and await _has(logs, "worker_stopped")


async def _has(logs: list[dict[str, object]], name: str) -> bool:
    return any(entry["event"] == name for entry in logs)
