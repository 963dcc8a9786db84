"""Stepwise upcasters: each turns the raw mapping of version N into version N+1.

They run on the decoded JSON object before the typed decode, so old payloads stored in
Redis or the archive keep decoding after a schema change. One pure function per step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

RawEvent = dict[str, Any]
Upcaster = Callable[[RawEvent], RawEvent]


def _task_submitted_v1_to_v2(raw: RawEvent) -> RawEvent:
    """v1 carried the seed's integer priority 1-10 (higher = more urgent)."""
    level = priority_level(raw.get("priority", 5))
    return {**raw, "priority": level, "schema_version": 2}


def priority_level(value: int) -> str:
    """The seed's 1-10 integer mapped onto our four levels (see docs/adr/0001)."""
    if value >= 9:
        return "critical"
    if value >= 7:
        return "high"
    if value >= 4:
        return "medium"
    return "low"


# (tag, from_version) -> step to from_version + 1
UPCASTERS: dict[tuple[str, int], Upcaster] = {
    ("task.submitted", 1): _task_submitted_v1_to_v2,
}


def upcast(raw: RawEvent, current_version: int) -> RawEvent:
    """Apply steps until ``raw`` reaches ``current_version``."""
    version = int(raw.get("schema_version", 1))
    while version < current_version:
        step = UPCASTERS.get((raw["type"], version))
        if step is None:
            raise ValueError(f"no upcaster for {raw['type']} v{version}")
        raw = step(raw)
        version = int(raw["schema_version"])
    return raw
