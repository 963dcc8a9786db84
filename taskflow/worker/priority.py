"""Which priority starts next: smooth weighted round robin over the levels waiting.

With all four levels backlogged, starts follow the weights 8:4:2:1 (critical, high,
medium, low), so low still gets 1/15 of the starts and is never starved, while a
critical task arriving behind queued low ones starts within a couple of slots (it is
picked 8 times in 15, never twice in a row skipped). Pure, so a table tests it.
"""

from __future__ import annotations

from collections.abc import Iterable

from taskflow.events import PRIORITIES, Priority

WEIGHTS: dict[Priority, int] = {"critical": 8, "high": 4, "medium": 2, "low": 1}


class PriorityPicker:
    """Nginx's smooth weighted round robin, over the levels that have work waiting."""

    def __init__(self, weights: dict[Priority, int] = WEIGHTS) -> None:
        self._weights = weights
        self._current: dict[Priority, int] = dict.fromkeys(weights, 0)

    def pick(self, waiting: Iterable[Priority]) -> Priority:
        levels = set(waiting)
        present = [level for level in PRIORITIES if level in levels]
        if not present:
            raise ValueError("nothing is waiting")
        for level in present:
            self._current[level] += self._weights[level]
        # Ties go to the more urgent level (PRIORITIES is ordered most urgent first).
        chosen = max(present, key=lambda level: (self._current[level], -PRIORITIES.index(level)))
        self._current[chosen] -= sum(self._weights[level] for level in present)
        return chosen


def share(level: Priority, waiting: Iterable[Priority], weights: dict[Priority, int] = WEIGHTS) -> float:
    """The fraction of starts ``level`` gets while exactly ``waiting`` levels have work."""
    present = set(waiting)
    return weights[level] / sum(weights[w] for w in present) if level in present else 0.0
