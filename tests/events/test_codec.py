"""Invariant 1: events are typed, tagged, versioned, and old versions upcast on read."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from taskflow.events import (
    CURRENT_VERSION,
    EVENT_TYPES,
    EventDecodeError,
    TaskFailed,
    TaskSubmitted,
    WorkerStarted,
    decode,
    encode,
    tag_of,
)
from taskflow.events.upcasters import priority_level

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

# A TaskSubmitted exactly as a v1 writer stored it: the seed's integer priority.
STORED_V1 = (
    b'{"type":"task.submitted","aggregate_id":"6f1c1f8e-0000-4000-8000-000000000001",'
    b'"occurred_at":"2025-06-01T12:00:00Z","correlation_id":"c1","causation_id":null,'
    b'"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","schema_version":1,'
    b'"task_name":"echo","args":[1,2],"kwargs":{"a":"b"},"priority":9,"max_retries":3}'
)


def test_every_event_has_an_explicit_dotted_tag_not_its_class_name() -> None:
    for event_type in EVENT_TYPES:
        tag = event_type.__struct_config__.tag
        assert isinstance(tag, str) and "." in tag and tag != event_type.__name__


def test_every_event_carries_the_envelope() -> None:
    envelope = {
        "event_id",
        "aggregate_id",
        "occurred_at",
        "causation_id",
        "correlation_id",
        "traceparent",
        "schema_version",
    }
    for event_type in EVENT_TYPES:
        assert envelope <= set(event_type.__struct_fields__), event_type.__name__


def test_round_trip_keeps_every_field_and_takes_the_stream_id() -> None:
    event = TaskFailed(
        aggregate_id="t1",
        occurred_at=NOW,
        correlation_id="c",
        causation_id="1-0",
        traceparent="tp",
        worker_id="w",
        attempt=2,
        error_type="ValueError",
        error="bad",
        traceback="Traceback...",
        duration_ms=1.5,
    )
    decoded = decode("5-1", encode(event))
    assert decoded == msgspec.structs.replace(event, event_id="5-1")
    assert tag_of(decoded) == "task.failed"


def test_stored_v1_task_submitted_decodes_into_the_current_shape() -> None:
    event = decode("1700000000000-0", STORED_V1)
    assert isinstance(event, TaskSubmitted)
    assert event.schema_version == CURRENT_VERSION["task.submitted"] == 2
    assert event.priority == "critical"
    assert bytes(event.args) == b"[1,2]" and bytes(event.kwargs) == b'{"a":"b"}'
    assert event.max_retries == 3
    assert event.event_id == "1700000000000-0"


@pytest.mark.parametrize(
    ("number", "level"),
    [(10, "critical"), (9, "critical"), (8, "high"), (7, "high"), (6, "medium"), (4, "medium"), (3, "low"), (1, "low")],
)
def test_seed_integer_priorities_map_onto_levels(number: int, level: str) -> None:
    assert priority_level(number) == level


def test_a_field_added_by_a_newer_writer_is_skipped_by_this_reader() -> None:
    event = WorkerStarted(
        aggregate_id="w1",
        occurred_at=NOW,
        correlation_id="c",
        hostname="h",
        pid=1,
        capacity=5,
        queues=("low",),
        version="9",
    )
    payload = encode(event)[:-1] + b',"gpu_count":4}'
    assert decode("1-0", payload) == msgspec.structs.replace(event, event_id="1-0")


def test_an_unknown_event_type_is_a_decode_error_not_a_crash() -> None:
    with pytest.raises(EventDecodeError):
        decode("1-0", b'{"type":"task.teleported","aggregate_id":"x"}')


def test_a_corrupt_payload_is_a_decode_error() -> None:
    with pytest.raises(EventDecodeError):
        decode("1-0", b"{not json")


@pytest.mark.parametrize(
    "payload",
    [b"[]", b'"x"', b"42", b'{"type": []}', b'{"type": "task.started", "schema_version": "abc"}', b"{}"],
)
def test_valid_json_that_is_no_event_is_a_decode_error(payload: bytes) -> None:
    """The projector acks and logs what raises EventDecodeError; anything else would stop
    it on that entry again after every restart."""
    with pytest.raises(EventDecodeError):
        decode("1-0", payload)


def test_encoding_leaves_the_stream_id_out_of_the_payload() -> None:
    event = WorkerStarted(
        aggregate_id="w1",
        occurred_at=NOW,
        correlation_id="c",
        hostname="h",
        pid=1,
        capacity=5,
        queues=(),
        version="1",
        event_id="9-9",
    )
    assert b'"9-9"' not in encode(event)
