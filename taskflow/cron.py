"""Pure cron arithmetic for recurring schedules (croniter parses; we decide)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import NAMESPACE_URL, uuid5

from croniter import croniter

_TICK_SPACE = uuid5(NAMESPACE_URL, "https://taskflow.dev/cron-tick")
# After an outage, fire at most this many missed ticks per schedule (oldest first skipped).
MAX_CATCH_UP = 100
CATCH_UP_WINDOW = timedelta(minutes=10)


def is_valid(cron: str) -> bool:
    """Five fields (minute ... weekday), or six with seconds last."""
    return bool(croniter.is_valid(cron))


def next_tick(cron: str, after: datetime) -> datetime:
    tick: datetime = croniter(cron, after.astimezone(UTC)).get_next(datetime)
    return tick.astimezone(UTC)


def due_ticks(cron: str, first: datetime, now: datetime) -> tuple[list[datetime], datetime]:
    """Ticks from ``first`` up to ``now`` (the last ``MAX_CATCH_UP`` of them) and the next
    tick after them. After a long outage the walk starts at most ``CATCH_UP_WINDOW``
    before ``now``, so its cost stays bounded (well inside a leader's lease)."""
    ticks: list[datetime] = []
    tick = first if now - first <= CATCH_UP_WINDOW else next_tick(cron, now - CATCH_UP_WINDOW)
    while tick <= now:
        ticks.append(tick)
        tick = next_tick(cron, tick)
    return ticks[-MAX_CATCH_UP:], tick


def tick_task_id(schedule_id: str, tick: datetime) -> str:
    """The same tick of the same schedule always names the same task, so a tick submitted
    twice (two coordinators, a retry after a crash) is one task (invariant 3)."""
    return str(uuid5(_TICK_SPACE, f"{schedule_id}@{tick.astimezone(UTC).isoformat()}"))
