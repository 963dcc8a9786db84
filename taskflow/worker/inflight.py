"""What a worker holds right now: entries running, and entries claimed but not started."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, defaultdict

from taskflow.events import Priority
from taskflow.worker.entry import DispatchEntry
from taskflow.worker.priority import PriorityPicker


class InFlight:
    """Capacity accounting plus the entry ids whose lease the worker must keep renewing.

    A suspect entry (one that already outlived two owners) runs alone: while it is held
    the worker takes no other work, so if it kills the process again it takes nothing
    else down with it, and innocent neighbours are not pushed toward the poison limit.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.running: dict[str, asyncio.Task[None]] = {}
        self.backlog: list[DispatchEntry] = []
        self.suspects: set[str] = set()
        # Paused by an operator: finish what is held, take nothing new.
        self.paused = False
        self._entries: dict[str, DispatchEntry] = {}
        self._changed = asyncio.Event()
        self._picker = PriorityPicker()

    @property
    def free(self) -> int:
        if self.suspects or self.paused:
            return 0
        return max(0, self.capacity - len(self._entries))

    def next_to_start(self) -> DispatchEntry | None:
        """The backlog entry to start now (backlog sorted by priority), if any may start."""
        if not self.backlog or len(self.running) >= self.capacity or self.paused:
            return None
        if any(entry_id in self.suspects for entry_id in self.running):
            return None
        suspect = next((e for e in self.backlog if e.entry_id in self.suspects), None)
        if suspect is not None:
            return suspect if not self.running else None
        level = self._picker.pick(e.task.priority for e in self.backlog)
        # The backlog is in stream order, so this is the oldest entry of that level.
        return next(e for e in self.backlog if e.task.priority == level)

    def reclaim_room(self) -> int:
        """How many stale entries to take per stream and pass: up to ``capacity`` beyond
        what is held, none while paused or while a suspect is held."""
        if self.suspects or self.paused:
            return 0
        return max(0, 2 * self.capacity + len(self.running) - len(self._entries))

    def wanted_per_level(self, levels: tuple[Priority, ...]) -> dict[Priority, int]:
        """How many more entries of each level to fetch: up to ``capacity`` waiting per
        level; nothing while paused or while a suspect is held."""
        if self.suspects or self.paused:
            return {}
        waiting = Counter(e.task.priority for e in self.backlog)
        # Refill a level once it is half drained, in one read, not one entry per start.
        return {level: self.capacity - waiting[level] for level in levels if waiting[level] <= self.capacity // 2}

    def holds(self, entry_id: str) -> bool:
        return entry_id in self._entries

    def add(self, entry: DispatchEntry) -> None:
        self._entries[entry.entry_id] = entry

    def remove(self, entry_id: str) -> None:
        self._entries.pop(entry_id, None)
        self.suspects.discard(entry_id)
        self.running.pop(entry_id, None)
        self._changed.set()

    def entries(self) -> list[DispatchEntry]:
        return list(self._entries.values())

    def by_stream(self) -> dict[str, list[str]]:
        grouped: dict[str, list[str]] = defaultdict(list)
        for entry in self._entries.values():
            grouped[entry.stream].append(entry.entry_id)
        return grouped

    def __len__(self) -> int:
        return len(self._entries)

    async def wait_for_change(self, timeout_s: float) -> None:
        """Return when an entry leaves (or after ``timeout_s``)."""
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout_s)

    async def wait_for_free_slot(self, timeout_s: float) -> None:
        """Return when a slot may have opened (or after ``timeout_s``)."""
        if self.free > 0:
            return
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout_s)
