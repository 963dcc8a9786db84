"""Feed positions as tables: the SSE id, its parsing, where a resume starts (no server)."""

from __future__ import annotations

import pytest

from taskflow.replay.position import START, Position, after_in, parse_sse_id, position_of, sse_id


@pytest.mark.parametrize(
    ("position", "partitions", "text"),
    [
        (Position(1733, 4, 0), 1, "1733-4"),
        (Position(1733, 4, 2), 3, "1733-4@2"),
    ],
)
def test_the_sse_id_is_the_stream_id_plus_the_partition_when_there_are_several(
    position: Position, partitions: int, text: str
) -> None:
    assert sse_id(position, range(partitions)) == text
    assert parse_sse_id(text, range(partitions)) == (position if partitions > 1 else Position(1733, 4, 2**64))


@pytest.mark.parametrize("text", ["", "abc", "1733", "1733-x", "1733-1@9", "-1-0", "1733-1@", "1" * 21 + "-0"])
def test_what_is_not_one_of_our_ids_is_refused(text: str) -> None:
    assert parse_sse_id(text, range(3)) is None


@pytest.mark.parametrize(
    ("position", "partition", "start"),
    [
        (START, 0, "0-0"),  # everything
        (Position(10, 2, 1), 0, "(10-2"),  # an earlier partition: strictly after the id
        (Position(10, 2, 1), 1, "(10-2"),  # its own partition: strictly after
        (Position(10, 2, 1), 2, "10-2"),  # a later partition: the same id comes after
        (Position(10, 2, 2**64), 5, "(10-2"),  # an id without a partition: after it everywhere
    ],
)
def test_a_resume_starts_right_after_the_position_in_every_partition(
    position: Position, partition: int, start: str
) -> None:
    assert after_in(position, partition) == start


def test_positions_order_events_as_they_were_appended() -> None:
    appended = [position_of("10-0", 2), position_of("10-0", 0), position_of("9-5", 1), position_of("10-1", 0)]
    assert sorted(appended) == [Position(9, 5, 1), Position(10, 0, 0), Position(10, 0, 2), Position(10, 1, 0)]
