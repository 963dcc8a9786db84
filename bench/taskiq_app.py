"""The taskiq side of ``bench/pipeline.py``: a RedisStreamBroker and two no-op tasks.

The worker is started as ``taskiq worker taskiq_app:broker --app-dir bench --workers 1``
with ``BENCH_TASKIQ_QUEUE`` (a stream name unique per run) and ``BENCH_REDIS_URL`` set;
the orchestrator builds an identical broker with ``make_broker`` to enqueue (kiq).
"""

from __future__ import annotations

import os

import taskiq.compat

if not hasattr(taskiq.compat, "model_dump"):
    # taskiq 0.13 removed these helpers, but taskiq-redis 1.2.2 (installed here) still
    # imports them at package import time (fixed in taskiq-redis 1.2.4). Only its result
    # backend and schedule sources call them; the stream broker used here does not.
    taskiq.compat.model_dump = lambda model: model.model_dump()  # type: ignore[attr-defined]
    taskiq.compat.model_validate = lambda cls, data: cls.model_validate(data)  # type: ignore[attr-defined]

from taskiq_redis import RedisStreamBroker

NOOP_ASYNC = "bench.noop_async"
NOOP_SYNC = "bench.noop_sync"


def make_broker(url: str, queue: str, *, max_connections: int | None = None) -> RedisStreamBroker:
    """The broker for one run; both tasks are registered on it.

    Everything is taskiq-redis's default except the stream / group names (unique per run)
    and ``consumer_id="0"``, so entries enqueued before the worker's group exists are read.
    """
    broker = RedisStreamBroker(
        url=url,
        queue_name=queue,
        consumer_group_name=f"{queue}-workers",
        consumer_id="0",
        max_connection_pool_size=max_connections,
    )

    @broker.task(task_name=NOOP_ASYNC)
    async def noop_async() -> None:
        """Does nothing (runs on the worker's event loop)."""

    @broker.task(task_name=NOOP_SYNC)
    def noop_sync() -> None:
        """Does nothing (taskiq runs sync tasks in its thread pool)."""

    return broker


# Constructing a broker does not connect, so importing this module elsewhere is harmless.
broker = make_broker(
    os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
    os.environ.get("BENCH_TASKIQ_QUEUE", "bench-taskiq-unset"),
)
