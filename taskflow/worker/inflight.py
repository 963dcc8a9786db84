"""What a worker holds right now: entries running, and entries claimed but not started."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from collections import defaultdict
from collections.abc import Iterator

from taskflow.events import Priority
from taskflow.worker.entry import DispatchEntry
from taskflow.worker.priority import PriorityPicker


def _stream_order(entry: DispatchEntry) -> tuple[int, int]:
    ms, _, seq = entry.entry_id.partition("-")
    return int(ms), int(seq or 0)


class Backlog:
    """Entries claimed but not started, per priority level, each level oldest first
    (reclaimed entries are older than those read meanwhile, so they are put in order)."""

    def __init__(self) -> None:
        self._levels: dict[Priority, list[DispatchEntry]] = {}

    def add(self, entry: DispatchEntry) -> None:
        level = self._levels.setdefault(entry.task.priority, [])
        if level and _stream_order(level[-1]) > _stream_order(entry):
            bisect.insort(level, entry, key=_stream_order)
        else:
            level.append(entry)

    def remove(self, entry: DispatchEntry) -> None:
        level = self._levels.get(entry.task.priority, [])
        if entry in level:
            level.remove(entry)

    def pop_oldest(self, level: Priority) -> DispatchEntry:
        return self._levels[level].pop(0)

    def levels(self) -> list[Priority]:
        """The levels with entries waiting."""
        return [level for level, entries in self._levels.items() if entries]

    def count(self, level: Priority) -> int:
        return len(self._levels.get(level, ()))

    def __iter__(self) -> Iterator[DispatchEntry]:
        for entries in list(self._levels.values()):
            yield from list(entries)

    def __bool__(self) -> bool:
        return any(self._levels.values())


class InFlight:
    """Capacity accounting plus the entry ids whose lease the worker must keep renewing.

    A suspect entry (one that already outlived two owners) runs alone: while it is held
    the worker takes no other work, so if it kills the process again it takes nothing
    else down with it, and innocent neighbours are not pushed toward the poison limit.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.running: dict[str, asyncio.Task[None]] = {}
        self.backlog = Backlog()
        self.suspects: set[str] = set()
        # Entries with an append in flight that may end them (a start, an outcome): that
        # append checks ownership itself, and once it has acked the entry a lease renewal
        # no longer finds it pending. Not being pending is then no sign of a lost lease.
        self.settling: set[str] = set()
        # Entries whose code has returned and whose outcome is being recorded: held (their
        # lease still renewed) but no longer taking a slot, so the next start need not
        # wait a round trip for the outcome's answer.
        self.finishing: set[str] = set()
        # Paused by an operator: finish what is held, take nothing new.
        self.paused = False
        self._entries: dict[str, DispatchEntry] = {}
        self._changed = asyncio.Event()
        self._picker = PriorityPicker()

    @property
    def slots_taken(self) -> int:
        """Entries whose code is running now (the concurrency limit counts these)."""
        return len(self.running) - len(self.finishing)

    def runs_code(self, entry_id: str) -> bool:
        return entry_id in self.running and entry_id not in self.finishing

    @property
    def free(self) -> int:
        if self.suspects or self.paused:
            return 0
        return max(0, self.capacity - len(self._entries))

    def next_to_start(self) -> DispatchEntry | None:
        """Take the backlog entry to start now, if any may start: by weighted priority,
        the oldest of its level."""
        if not self.backlog or self.slots_taken >= self.capacity or self.paused:
            return None
        if self.suspects:
            if any(entry_id in self.suspects for entry_id in self.running):
                return None
            suspect = next((e for e in self.backlog if e.entry_id in self.suspects), None)
            if suspect is not None:
                if self.running:
                    return None
                self.backlog.remove(suspect)
                return suspect
        return self.backlog.pop_oldest(self._picker.pick(self.backlog.levels()))

    def reclaim_room(self) -> int:
        """How many stale entries to take per stream and pass: up to ``capacity`` beyond
        what is held, none while paused or while a suspect is held."""
        if self.suspects or self.paused:
            return 0
        return max(0, 2 * self.capacity + len(self.running) - len(self._entries))

    def wanted_per_level(self, levels: tuple[Priority, ...]) -> dict[Priority, int]:
        """How many more entries of each level to fetch: up to ``capacity`` (at least 2)
        waiting per level; nothing while paused or while a suspect is held."""
        if self.suspects or self.paused:
            return {}
        # Refill a level once it is half drained, in one read, not one entry per start. At
        # least two wait per level: a slot frees as soon as its code returns, and with one
        # waiting the next start could come before the refill read, handing the start to
        # a lower level than the weights say.
        target = max(2, self.capacity)
        waiting = {level: self.backlog.count(level) for level in levels}
        return {level: target - n for level, n in waiting.items() if n <= target // 2}

    def holds(self, entry_id: str) -> bool:
        return entry_id in self._entries

    def add(self, entry: DispatchEntry) -> None:
        self._entries[entry.entry_id] = entry

    def remove(self, entry_id: str) -> None:
        self._entries.pop(entry_id, None)
        self.suspects.discard(entry_id)
        self.settling.discard(entry_id)
        self.finishing.discard(entry_id)
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
