"""The dramatiq side of ``bench/sync_tasks.py``: a RedisBroker and one no-op actor.

The worker is started as ``dramatiq dramatiq_app:broker --path bench --processes 1
--threads C`` with ``BENCH_DRAMATIQ_NAMESPACE`` (a Redis key prefix unique per run) and
``BENCH_REDIS_URL`` set; the orchestrator builds an identical broker with ``make_broker`` to
enqueue (``actor.send()``) and reads the queue's keys (``QueueKeys``) to see it drain.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

QUEUE = "bench"
NOOP_ACTOR = "bench_noop"


@dataclass(frozen=True)
class QueueKeys:
    """The Redis keys of QUEUE under one namespace, as dramatiq's ``dispatch.lua`` names them."""

    namespace: str

    @property
    def ids(self) -> str:
        """The list of message ids still to be fetched (LPOP'd by a fetch)."""
        return f"{self.namespace}:{QUEUE}"

    @property
    def messages(self) -> str:
        """The hash id -> message; an entry leaves it only when its message is acked
        (or nacked: then it moves to the dead-letter hash)."""
        return f"{self.namespace}:{QUEUE}.msgs"

    @property
    def delayed_messages(self) -> str:
        """The delay queue's hash: where the Retries middleware puts a failed message."""
        return f"{self.namespace}:{QUEUE}.DQ.msgs"

    @property
    def dead(self) -> str:
        """The dead-letter sorted set (messages that failed for good, or for unknown actors)."""
        return f"{self.namespace}:{QUEUE}.XQ"


def make_broker(url: str, namespace: str) -> tuple[RedisBroker, dramatiq.Actor[Any, Any]]:
    """The broker for one run (dramatiq's default middleware; only the key namespace is
    unique per run) and its no-op actor on QUEUE."""
    broker = RedisBroker(url=url, namespace=namespace)

    def bench_noop() -> None:
        """Does nothing (a dramatiq worker thread runs it)."""

    actor = dramatiq.actor(bench_noop, actor_name=NOOP_ACTOR, queue_name=QUEUE, broker=broker)
    return broker, actor


# Constructing a broker does not connect, so importing this module elsewhere is harmless.
broker, _noop = make_broker(
    os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
    os.environ.get("BENCH_DRAMATIQ_NAMESPACE", "bench-dramatiq-unset"),
)
