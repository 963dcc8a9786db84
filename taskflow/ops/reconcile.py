"""What ``taskflow reconcile`` decides after Redis lost data: pure functions over what was
read from Redis and PostgreSQL (``reconcile_survey``), each with a table test; the repairs
are ``reconcile_repair``'s.

PostgreSQL's archive and projections hold everything the projector committed (invariant
4), so after an AOF tail was lost or Redis was replaced they still know what was accepted.
Three things can then be wrong in Redis, each decided here:

- a consumer group is missing (``missing_groups``): nobody reads that stream;
- a stream's last generated id is behind the archive's checkpoint, or behind one of its
  groups' last delivered id (``streams_behind``): the next ids would be ones the
  projector skips as already projected, or that ``XREADGROUP >`` never delivers — silent
  loss of every new event;
- an accepted task that has not finished has nothing left in Redis (``lost_tasks``): no
  marker and no entry in line, so nothing will ever run it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

import msgspec

from taskflow.streams.dispatch import DispatchMode
from taskflow.streams.marker import STATE_OF_STATUS

StreamId = tuple[int, int]

# The projected statuses of a task that has not finished: its marker's live states.
UNFINISHED_STATUSES: Final[tuple[str, ...]] = tuple(
    status for status, state in STATE_OF_STATUS.items() if state in ("scheduled", "waiting", "pending", "running")
)


def parse_id(text: str) -> StreamId:
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def format_id(stream_id: StreamId) -> str:
    return f"{stream_id[0]}-{stream_id[1]}"


class StreamState(msgspec.Struct, frozen=True, kw_only=True):
    """One stream TaskFlow uses, as Redis has it now."""

    name: str  # as ``taskflow streams`` names it: "events:0", "dispatch:0:high"
    key: str
    exists: bool
    # XINFO STREAM's last-generated-id: the next XADD * gets a larger id. 0-0 when missing.
    last_generated_id: StreamId
    # group name -> its last delivered id
    groups: dict[str, StreamId]
    # The group TaskFlow needs on it (``ensure_groups``): "projector" or "workers".
    required_group: str
    # The partition's archive checkpoint; None for a dispatch stream (nothing archives it).
    checkpoint: StreamId | None


class MissingGroup(msgspec.Struct, frozen=True, kw_only=True):
    stream: str
    key: str
    group: str
    stream_exists: bool


class StreamBehind(msgspec.Struct, frozen=True, kw_only=True):
    """The stream must be moved (XSETID) to at least ``move_to``: new entries then get
    ids above it."""

    stream: str
    key: str
    last_generated_id: str
    move_to: str
    # "archive checkpoint" or "group <name> last delivered"
    because: str


def missing_groups(streams: list[StreamState]) -> list[MissingGroup]:
    return [
        MissingGroup(stream=s.name, key=s.key, group=s.required_group, stream_exists=s.exists)
        for s in streams
        if s.required_group not in s.groups
    ]


def stream_behind(stream: StreamState) -> StreamBehind | None:
    """Whether ``stream``'s next ids would be lost, and how far it must move.

    An id equal to the floor is safe: XADD * always gives an id strictly above the last
    generated one. Below the checkpoint, the projector takes a new event for one it
    already projected and skips it (invariant 4's redelivery rule); below a group's last
    delivered id, ``XREADGROUP >`` does not deliver it to that group at all. A group
    behind the checkpoint is harmless: what it gets again is skipped by the projector."""
    floors: list[tuple[StreamId, str]] = [(d, f"group {g} last delivered") for g, d in stream.groups.items()]
    if stream.checkpoint is not None:
        floors.append((stream.checkpoint, "archive checkpoint"))
    if not floors:
        return None
    floor, because = max(floors)
    if stream.last_generated_id >= floor:
        return None
    return StreamBehind(
        stream=stream.name,
        key=stream.key,
        last_generated_id=format_id(stream.last_generated_id),
        move_to=format_id(floor),
        because=because,
    )


def streams_behind(streams: list[StreamState]) -> list[StreamBehind]:
    return [behind for s in streams if (behind := stream_behind(s)) is not None]


class TaskCandidate(msgspec.Struct, frozen=True, kw_only=True):
    """A task the projection shows as not finished."""

    task_id: str
    task_name: str
    status: str
    submitted_at: datetime
    # When a SCHEDULED task is due (its scheduled_at, or a booked retry's time).
    scheduled_at: datetime | None


class RedisTrace(msgspec.Struct, frozen=True, kw_only=True):
    """What Redis still has of one task."""

    marker: bool
    in_dispatch: bool
    held: bool
    waiting: bool
    # An event of the task above the archive checkpoint: the projection is behind on it
    # (it may have ended, or moved between the lines while we read them).
    unprojected_events: bool


class LostTask(msgspec.Struct, frozen=True, kw_only=True):
    task_id: str
    task_name: str
    status: str
    submitted_at: datetime


def is_lost(trace: RedisTrace) -> bool:
    return not (trace.marker or trace.in_dispatch or trace.held or trace.waiting or trace.unprojected_events)


def lost_tasks(candidates: list[TaskCandidate], traces: dict[str, RedisTrace]) -> list[LostTask]:
    """The unfinished tasks Redis has forgotten, oldest first. A candidate without a trace
    was not looked up and is not judged."""
    lost = [
        LostTask(task_id=c.task_id, task_name=c.task_name, status=c.status, submitted_at=c.submitted_at)
        for c in candidates
        if (trace := traces.get(c.task_id)) is not None and is_lost(trace)
    ]
    return sorted(lost, key=lambda t: (t.submitted_at, t.task_id))


class Restore(msgspec.Struct, frozen=True, kw_only=True):
    """How a lost task is put back in line: as submit.lua would, by mode."""

    mode: DispatchMode
    due_ms: int


def restore_of(status: str, scheduled_at: datetime | None, now: datetime) -> Restore:
    """A WAITING task waits for its parents again (the coordinator releases it); a
    SCHEDULED one is held until its time, at once if that has passed; PENDING and RUNNING
    ones go on their dispatch stream. A RUNNING task may still be running on a worker:
    that worker can no longer record its outcome (its entry is gone, owned_append refuses
    it), so running it again is the only way it ends — at least once, not exactly once."""
    now_ms = int(now.timestamp() * 1000)
    if status == "WAITING":
        return Restore(mode="wait", due_ms=now_ms)
    if status == "SCHEDULED" and scheduled_at is not None and scheduled_at > now:
        return Restore(mode="schedule", due_ms=int(scheduled_at.timestamp() * 1000))
    return Restore(mode="dispatch", due_ms=now_ms)


RepairOutcome = Literal["repaired", "already_repaired", "failed"]


class Repair(msgspec.Struct, frozen=True, kw_only=True):
    what: Literal["group", "stream_id", "task"]
    target: str
    outcome: RepairOutcome
    detail: str = ""


class Report(msgspec.Struct, kw_only=True):
    """What reconcile found (and, with --repair, did): the --json document."""

    deployment: str  # the namespace, as Keyspace.describe() gives it
    missing_groups: list[MissingGroup]
    streams_behind: list[StreamBehind]
    lost_tasks: list[LostTask]
    # Unfinished tasks with events the projector has not archived yet: not judged in this
    # pass (the projection is behind on them); run reconcile again once it caught up.
    unjudged_tasks: int
    repairs: list[Repair] = msgspec.field(default_factory=list)

    @property
    def problems(self) -> int:
        return len(self.missing_groups) + len(self.streams_behind) + len(self.lost_tasks)


def exit_status(report: Report, repaired: bool) -> int:
    """0 when nothing is wrong, or every problem was repaired; 1 otherwise."""
    if report.problems == 0:
        return 0
    if not repaired:
        return 1
    return 1 if any(r.outcome == "failed" for r in report.repairs) else 0
