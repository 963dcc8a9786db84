"""Where a feed is: one total order over every partition's events.

Stream ids come from one Redis clock, and one XREAD reads every partition at one instant,
so (ms, seq, partition) orders all events as they were appended. The SSE id is the
event's stream id; with more than one partition it carries its partition too
(``1733400000000-3@2``), which makes a resume exact even for two events of one
millisecond in different partitions.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_ID = re.compile(r"^(?P<ms>\d{1,20})-(?P<seq>\d{1,20})(?:@(?P<p>\d{1,5}))?$")
# Larger than any stream sequence and partition: an id without a partition resumes after
# every event of that id.
_LAST = 2**64


class Position(NamedTuple):
    ms: int
    seq: int
    partition: int

    def stream_id(self) -> str:
        return f"{self.ms}-{self.seq}"


START = Position(0, 0, -1)  # before every event


def position_of(entry_id: str, partition: int) -> Position:
    ms, _, seq = entry_id.partition("-")
    return Position(int(ms), int(seq or 0), partition)


def sse_id(position: Position, partitions: range) -> str:
    """The ``id:`` of an SSE message: the stream id, plus ``@partition`` when there are
    several (``partitions``: the keyspace's)."""
    if len(partitions) == 1:
        return position.stream_id()
    return f"{position.stream_id()}@{position.partition}"


def parse_sse_id(text: str, partitions: range) -> Position | None:
    """The position a ``Last-Event-ID`` names, or None when it is not one of ours (a
    client then starts live). Without ``@p`` it means after that stream id in every
    partition."""
    found = _ID.fullmatch(text.strip())
    if found is None:
        return None
    p = found["p"]
    if p is not None and int(p) not in partitions:
        return None
    partition = int(p) if p is not None and len(partitions) > 1 else _LAST
    return Position(int(found["ms"]), int(found["seq"]), partition)


def after_in(position: Position, partition: int) -> str:
    """The smallest stream id of ``partition`` that comes after ``position`` (XRANGE's
    exclusive or inclusive start)."""
    if partition > position.partition:
        return position.stream_id()  # same id in a later partition comes after
    return f"({position.stream_id()}"
