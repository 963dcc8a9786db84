"""The live states of a task kept in its submit marker (``Keyspace.task_marker``), one
vocabulary for every process: ``MarkerState``, lower case, what Redis knows now.

Not to be confused with a task's *status* (``TaskStatus``, upper case: PENDING, COMPLETED,
...), what the projection shows; ``STATE_OF_STATUS`` maps one onto the other. The Lua
scripts write these same strings (streams/lua/submit.lua lists them).
"""

from __future__ import annotations

from typing import Final, Literal

MarkerState = Literal["scheduled", "waiting", "pending", "running", "succeeded", "failed", "timed_out", "cancelled"]

# Ended without completing: retry may run it again; its waiting children are cancelled.
ENDED_BADLY: Final[frozenset[str]] = frozenset({"failed", "timed_out", "cancelled"})

STATE_OF_STATUS: Final[dict[str, MarkerState]] = {
    "SCHEDULED": "scheduled",
    "WAITING": "waiting",
    "PENDING": "pending",
    "RUNNING": "running",
    "COMPLETED": "succeeded",
    "FAILED": "failed",
    "TIMEOUT": "timed_out",
    "CANCELLED": "cancelled",
}
