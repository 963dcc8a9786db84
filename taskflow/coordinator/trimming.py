"""Where a Redis stream may be trimmed (ARCHITECTURE invariant 8): pure, no I/O.

``XTRIM key MINID ~ <id>`` drops entries whose id is below ``<id>``. Each thing that still
needs an entry sets a *floor*, the first id that must stay; the MINID is the lowest floor:

* every consumer group: its oldest pending entry, or, with nothing pending, the entry after
  its last-delivered id (everything up to it is delivered and acknowledged);
* for an event stream, the archive: the entry after the projector's checkpoint (PostgreSQL
  holds everything up to it; Redis is the only copy of the rest);
* the retention window: entries newer than ``now - stream_retention_seconds``, which live
  feeds and ``taskflow streams tail`` read from Redis.

A floor nobody can name (a missing group, no checkpoint row, trimming turned off) means keep
everything: the answer is then ``None``, never a guess.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import msgspec

from taskflow.projections.store import StreamId
from taskflow.settings import NEVER_TRIM

# The largest sequence number of a stream id (Redis: an unsigned 64-bit integer).
MAX_SEQ = 2**64 - 1


class GroupCursor(msgspec.Struct, frozen=True):
    """One consumer group of a stream as one atomic read saw it."""

    name: str
    last_delivered: StreamId
    # The smallest id delivered and not acknowledged (XPENDING's summary), if any.
    oldest_pending: StreamId | None = None


def after(entry: StreamId) -> StreamId:
    """The smallest stream id above ``entry``."""
    ms, seq = entry
    return (ms + 1, 0) if seq == MAX_SEQ else (ms, seq + 1)


def format_stream_id(entry: StreamId) -> str:
    return f"{entry[0]}-{entry[1]}"


def group_floor(group: GroupCursor) -> StreamId:
    """The first entry ``group`` still needs. The oldest pending entry is never above the
    last delivered one; ``min`` keeps the rule true even for a read that saw otherwise."""
    delivered = after(group.last_delivered)
    return delivered if group.oldest_pending is None else min(group.oldest_pending, delivered)


def archive_floor(checkpoint: StreamId | None) -> StreamId | None:
    """The first event the archive does not hold; None without a checkpoint row (nothing
    archived yet: keep everything)."""
    return None if checkpoint is None else after(checkpoint)


def retention_floor(now_ms: int, retention_seconds: float) -> StreamId | None:
    """The oldest id the retention window keeps; None when trimming is off (``-1``)."""
    if retention_seconds == NEVER_TRIM:
        return None
    return (max(0, now_ms - int(retention_seconds * 1000)), 0)


def decide_minid(
    groups: Sequence[GroupCursor], required_groups: Collection[str], floors: Sequence[StreamId | None]
) -> StreamId | None:
    """The MINID for ``XTRIM``: the lowest floor of the groups and of ``floors`` (the
    archive's, the retention window's). None (do not trim) when a required group is missing
    (a group created later would start from the stream's beginning) or a floor is None."""
    present = {group.name for group in groups}
    if not set(required_groups) <= present or any(floor is None for floor in floors):
        return None
    candidates = [group_floor(group) for group in groups]
    candidates.extend(floor for floor in floors if floor is not None)
    return min(candidates)
