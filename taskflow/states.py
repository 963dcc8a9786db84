"""The live task states kept in the submit marker, one vocabulary for every process.

The Lua scripts write these same strings (lua/submit.lua lists them); the projection's
statuses (PENDING, COMPLETED, ...) map onto them with ``STATE_OF_STATUS``.
"""

from __future__ import annotations

from typing import Final, Literal

TaskState = Literal["scheduled", "waiting", "pending", "running", "succeeded", "failed", "timed_out", "cancelled"]

# Ended without completing: retry may run it again; its waiting children are cancelled.
ENDED_BADLY: Final[frozenset[str]] = frozenset({"failed", "timed_out", "cancelled"})

STATE_OF_STATUS: Final[dict[str, TaskState]] = {
    "SCHEDULED": "scheduled",
    "WAITING": "waiting",
    "PENDING": "pending",
    "RUNNING": "running",
    "COMPLETED": "succeeded",
    "FAILED": "failed",
    "TIMEOUT": "timed_out",
    "CANCELLED": "cancelled",
}
