"""The priority picker: a table of who starts next (pure, no Redis)."""

from __future__ import annotations

from collections import Counter

import pytest

from taskflow.events import PRIORITIES
from taskflow.worker.priority import PriorityPicker, share


def _starts(waiting: tuple[str, ...], n: int) -> Counter[str]:
    picker = PriorityPicker()
    return Counter(picker.pick(waiting) for _ in range(n))  # type: ignore[arg-type]


def test_with_every_level_backlogged_starts_follow_8_4_2_1() -> None:
    assert _starts(PRIORITIES, 150) == {"critical": 80, "high": 40, "medium": 20, "low": 10}


@pytest.mark.parametrize(
    ("waiting", "expected"),
    [
        (("critical", "low"), {"critical": 80, "low": 10}),
        (("high", "medium", "low"), {"high": 40, "medium": 20, "low": 10}),
        (("low",), {"low": 90}),
    ],
)
def test_only_the_levels_waiting_share_the_starts(waiting: tuple[str, ...], expected: dict[str, int]) -> None:
    n = sum(expected.values())
    assert _starts(waiting, n) == expected


def test_low_is_never_starved_it_starts_at_least_once_every_15() -> None:
    picker = PriorityPicker()
    picks = [picker.pick(PRIORITIES) for _ in range(150)]
    gaps = [i for i, p in enumerate(picks) if p == "low"]
    assert all(b - a <= 15 for a, b in zip([-1, *gaps], gaps, strict=False))


def test_critical_is_never_passed_over_twice_in_a_row() -> None:
    picker = PriorityPicker()
    picks = [picker.pick(PRIORITIES) for _ in range(150)]
    assert "critical" in {picks[0]} and all("critical" in picks[i : i + 2] for i in range(149))


def test_documented_shares() -> None:
    assert share("low", PRIORITIES) == pytest.approx(1 / 15)  # type: ignore[arg-type]
    assert share("critical", PRIORITIES) == pytest.approx(8 / 15)  # type: ignore[arg-type]
