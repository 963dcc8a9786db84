"""Every Redis key TaskFlow writes, built here and nowhere else.

Keys of one partition share the hash tag ``{p}`` so each multi-key script touches a single
Redis Cluster slot (ARCHITECTURE invariant 7). The namespace lets two deployments or test
runs share one Redis.
"""

from __future__ import annotations

import zlib

from taskflow.events import PRIORITIES, Priority

WORKERS_GROUP = "workers"
PROJECTOR_GROUP = "projector"


def partition_of(aggregate_id: str, partitions: int) -> int:
    """Stable partition of an aggregate: all its events land in one stream (invariant 6)."""
    if partitions == 1:
        return 0
    return zlib.crc32(aggregate_id.encode()) % partitions


def events(ns: str, p: int) -> str:
    """The event log of partition ``p``: the only source of truth."""
    return f"{ns}:{{{p}}}:events"


def dispatch(ns: str, p: int, priority: Priority) -> str:
    """Work for workers (group ``workers``), one stream per priority."""
    return f"{ns}:{{{p}}}:q:{priority}"


def dispatch_streams(ns: str, p: int) -> list[str]:
    return [dispatch(ns, p, priority) for priority in PRIORITIES]


def starts(ns: str, p: int) -> str:
    """Hash: dispatch entry id -> how many runs of it began. Entries leave it when acked,
    so it holds only work in flight."""
    return f"{ns}:{{{p}}}:starts"


def task_marker(ns: str, p: int, task_id: str) -> str:
    """Hash written by the submit script: remembers a task id (and its idempotency
    fingerprint) so a retried submit returns the first result (invariant 3)."""
    return f"{ns}:{{{p}}}:task:{task_id}"


def worker_heartbeat(ns: str, worker_id: str) -> str:
    """Expiring hash with a worker's last heartbeat; never part of the permanent log."""
    return f"{ns}:worker:{worker_id}"


def worker_registry(ns: str, p: int) -> str:
    """Sorted set: worker id -> its last heartbeat (ms), for workers whose events live in
    partition ``p``; the coordinator leading ``p`` finds the silent ones here."""
    return f"{ns}:{{{p}}}:workers"


def worker_control(ns: str, worker_id: str) -> str:
    """Hash of orders for one worker (``paused``), which it polls."""
    return f"{ns}:worker:{worker_id}:control"


def projector_fence(ns: str, p: int) -> str:
    """Counter: each projector that takes partition ``p`` gets the next fencing token."""
    return f"{ns}:{{{p}}}:projector:fence"


def projector_lock(ns: str, p: int) -> str:
    """Held by the one projector process that projects partition ``p`` (invariant 6)."""
    return f"{ns}:{{{p}}}:projector:lock"


def held_due(ns: str, p: int) -> str:
    """Sorted set: task id -> due time (ms) of tasks held for later (a future
    ``scheduled_at``, a retry not yet due). The key keeps its first name, ``schedule``, so
    tasks held by an older version are still found; in code, "schedule" means cron."""
    return f"{ns}:{{{p}}}:schedule"


def held(ns: str, p: int) -> str:
    """Hash: task id -> the dispatch fields of a held task (``dispatch.HeldDispatch``)."""
    return f"{ns}:{{{p}}}:held"


def coordinator_leader(ns: str, p: int) -> str:
    """The coordinator leading partition ``p``: ``id|fence``, with a TTL (the lease)."""
    return f"{ns}:{{{p}}}:coordinator:leader"


def coordinator_fence(ns: str, p: int) -> str:
    """Counter handing each new coordinator leader of ``p`` a larger fencing token."""
    return f"{ns}:{{{p}}}:coordinator:fence"


def cron_schedules(ns: str, p: int) -> str:
    """Hash: schedule id -> its definition (cron, task template) while it exists."""
    return f"{ns}:{{{p}}}:cron"


def cron_due(ns: str, p: int) -> str:
    """Sorted set: schedule id -> its next tick (ms), which the coordinator fires."""
    return f"{ns}:{{{p}}}:cron:due"


def waiting(ns: str, p: int) -> str:
    """Sorted set: task id -> submit time (ms) of tasks waiting for their parents."""
    return f"{ns}:{{{p}}}:waiting"
