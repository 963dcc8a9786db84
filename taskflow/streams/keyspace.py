"""Every Redis key TaskFlow writes, built here and nowhere else.

A ``Keyspace`` (namespace + partitions) is made once per process from its settings and
passed down; no other module formats a key or reads the namespace. Keys of one partition
share the hash tag ``{p}`` so each multi-key script touches a single Redis Cluster slot
(ARCHITECTURE invariant 7). The namespace lets two deployments or test runs share one Redis.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from taskflow.events import PRIORITIES, Priority
from taskflow.settings import Settings

WORKERS_GROUP = "workers"
PROJECTOR_GROUP = "projector"


def partition_of(aggregate_id: str, partitions: int) -> int:
    """Stable partition of an aggregate: all its events land in one stream (invariant 6)."""
    if partitions == 1:
        return 0
    return zlib.crc32(aggregate_id.encode()) % partitions


@dataclass(frozen=True, slots=True)
class Keyspace:
    namespace: str
    partitions: int

    @classmethod
    def of(cls, settings: Settings) -> Keyspace:
        return cls(settings.namespace, settings.partitions)

    @property
    def all_partitions(self) -> range:
        return range(self.partitions)

    def partition_of(self, aggregate_id: str) -> int:
        return partition_of(aggregate_id, self.partitions)

    def events(self, p: int) -> str:
        """The event log of partition ``p``: the only source of truth."""
        return f"{self.namespace}:{{{p}}}:events"

    def events_of(self, aggregate_id: str) -> str:
        """The event log holding ``aggregate_id``'s events."""
        return self.events(self.partition_of(aggregate_id))

    def dispatch(self, p: int, priority: Priority) -> str:
        """Work for workers (group ``workers``), one stream per priority."""
        return f"{self.namespace}:{{{p}}}:q:{priority}"

    def dispatch_streams(self, p: int) -> list[str]:
        return [self.dispatch(p, priority) for priority in PRIORITIES]

    def starts(self, p: int) -> str:
        """Hash: dispatch entry id -> how many runs of it began. Entries leave it when
        acked, so it holds only work in flight."""
        return f"{self.namespace}:{{{p}}}:starts"

    def task_marker(self, task_id: str, p: int | None = None) -> str:
        """Hash written by the submit script: remembers a task id (and its idempotency
        fingerprint) so a retried submit returns the first result (invariant 3), and the
        task's live state (``streams.marker``).

        It lives in the task's own partition; a script acting on a dispatch entry passes
        the entry's partition ``p`` so all its keys share one slot even when the entry
        names a task of another partition (a forged entry, which then finds no marker)."""
        return f"{self.namespace}:{{{self.partition_of(task_id) if p is None else p}}}:task:{task_id}"

    def worker_heartbeat(self, worker_id: str) -> str:
        """Expiring hash with a worker's last heartbeat; never part of the permanent log."""
        return f"{self.namespace}:worker:{worker_id}"

    def worker_registry(self, p: int) -> str:
        """Sorted set: worker id -> its last heartbeat (ms), for workers whose events live
        in partition ``p``; the coordinator leading ``p`` finds the silent ones here."""
        return f"{self.namespace}:{{{p}}}:workers"

    def worker_control(self, worker_id: str) -> str:
        """Hash of orders for one worker (``paused``), which it polls."""
        return f"{self.namespace}:worker:{worker_id}:control"

    def projector_fence(self, p: int) -> str:
        """Counter: each projector that takes partition ``p`` gets the next fencing token."""
        return f"{self.namespace}:{{{p}}}:projector:fence"

    def projector_lock(self, p: int) -> str:
        """Held by the one projector process that projects partition ``p`` (invariant 6)."""
        return f"{self.namespace}:{{{p}}}:projector:lock"

    def quarantine_retried(self, p: int) -> str:
        """Hash: id of a quarantined entry of partition ``p``'s events -> the id it was
        re-appended as (``taskflow streams quarantine --retry``). Written in the same script
        step as the append and kept: an entry is re-appended at most once, whatever fails
        after the append."""
        return f"{self.namespace}:{{{p}}}:quarantine:retried"

    def held_due(self, p: int) -> str:
        """Sorted set: task id -> due time (ms) of tasks held for later (a future
        ``scheduled_at``, a retry not yet due). The key keeps its first name, ``schedule``,
        so tasks held by an older version are still found; in code, "schedule" means cron."""
        return f"{self.namespace}:{{{p}}}:schedule"

    def held(self, p: int) -> str:
        """Hash: task id -> the dispatch fields of a held task (``dispatch.HeldDispatch``)."""
        return f"{self.namespace}:{{{p}}}:held"

    def coordinator_leader(self, p: int) -> str:
        """The coordinator leading partition ``p``: ``id|fence``, with a TTL (the lease)."""
        return f"{self.namespace}:{{{p}}}:coordinator:leader"

    def coordinator_fence(self, p: int) -> str:
        """Counter handing each new coordinator leader of ``p`` a larger fencing token."""
        return f"{self.namespace}:{{{p}}}:coordinator:fence"

    def cron_schedules(self, p: int) -> str:
        """Hash: schedule id -> its definition (cron, task template) while it exists."""
        return f"{self.namespace}:{{{p}}}:cron"

    def cron_due(self, p: int) -> str:
        """Sorted set: schedule id -> its next tick (ms), which the coordinator fires."""
        return f"{self.namespace}:{{{p}}}:cron:due"

    def waiting(self, p: int) -> str:
        """Sorted set: task id -> submit time (ms) of tasks waiting for their parents."""
        return f"{self.namespace}:{{{p}}}:waiting"

    def sse_ticket(self, ticket: str) -> str:
        """A one-use SSE ticket: the JSON principal it stands for, with a TTL <= 60 s."""
        return f"{self.namespace}:sse:ticket:{ticket}"

    def open_feeds(self, user: str) -> str:
        """Sorted set: a user's open SSE feeds (any gateway replica) -> when each lapses (ms)
        unless its keep-alive renews it."""
        return f"{self.namespace}:sse:open:{user}"

    def client_name(self, role: str) -> str:
        """The name a long-lived connection gives itself (CLIENT SETNAME): which deployment
        and what for, as an operator reads CLIENT LIST."""
        return f"{self.namespace}:{role}"

    def rate_limit(self, scope: str, who: str) -> str:
        """A rate limit's state (GCRA: its theoretical arrival time, ms). One hash tag for
        all of them: the user's and the address's limits are checked in one script."""
        return f"{self.namespace}:{{ratelimit}}:{scope}:{who}"

    def campaign(self, campaign_id: str) -> str:
        """Hash: a campaign's live state (``campaigns/__init__.py``: status, owner, rate,
        templates, counters), in the campaign's partition like its events."""
        return f"{self.namespace}:{{{self.partition_of(campaign_id)}}}:campaign:{campaign_id}"

    def campaign_ledger(self, campaign_id: str) -> str:
        """Hash: recipient id -> its state in the campaign (the per-recipient ledger)."""
        return f"{self.namespace}:{{{self.partition_of(campaign_id)}}}:campaign:{campaign_id}:ledger"

    def campaign_rate(self, campaign_id: str) -> str:
        """A campaign's send rate limit (GCRA: its theoretical arrival time, ms), shared by
        every worker and kept across pause and resume."""
        return f"{self.namespace}:{{{self.partition_of(campaign_id)}}}:campaign:{campaign_id}:rate"

    def campaigns_due(self, p: int) -> str:
        """Sorted set: campaign id -> its ``scheduled_at`` (ms), for campaigns of partition
        ``p`` waiting to start; the coordinator leading ``p`` starts them when due."""
        return f"{self.namespace}:{{{p}}}:campaigns:due"

    def campaigns_running(self, p: int) -> str:
        """Set: campaigns of partition ``p`` that were started and may still have sends in
        flight; the coordinator watches them for recipients left stuck by a send task that
        ended without recording them (a timeout, a poison entry). A hint, pruned as they end."""
        return f"{self.namespace}:{{{p}}}:campaigns:running"

    def suppressed(self, owner: str) -> str:
        """Set: addresses that unsubscribed from any campaign of ``owner``; later
        campaigns of the same owner skip them (the suppression list)."""
        return f"{self.namespace}:suppressed:{owner}"

    def describe(self) -> str:
        """The deployment as people read it (command output): its namespace."""
        return self.namespace
