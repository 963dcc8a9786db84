"""Moments as people type them: ``2026-12-06T10:03``, ``2026-12-06``, ``now``, ``-15m``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from taskflow.errors import TaskFlowError

_RELATIVE = re.compile(r"^-(?P<n>\d{1,9}(?:\.\d+)?)(?P<unit>[smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


class BadMoment(TaskFlowError, ValueError):
    """Text that names no moment."""


def parse_moment(text: str, now: datetime) -> datetime:
    """An aware datetime: ISO 8601 (a time without zone is UTC), ``now``, or a moment
    before ``now`` (``-30s``, ``-15m``, ``-2h``, ``-7d``)."""
    text = text.strip()
    if text == "now":
        return now
    relative = _RELATIVE.fullmatch(text)
    if relative is not None:
        return now - timedelta(seconds=float(relative["n"]) * _UNITS[relative["unit"]])
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadMoment(
            f"{text!r} is not a time: use ISO 8601 (2026-12-06T10:03:00Z), now, or -15m / -2h / -7d"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
