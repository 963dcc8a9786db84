"""The tagged union of all events and the one codec for stream entries."""

from __future__ import annotations

from typing import Any, Final

import msgspec

from taskflow.errors import TaskFlowError
from taskflow.events.campaign import (
    CampaignCompleted,
    CampaignCreated,
    CampaignPaused,
    CampaignResumed,
    CampaignStarted,
    FailedResent,
    RecipientFailed,
    RecipientsAdded,
    RecipientSent,
    RecipientSkipped,
    RecipientUnsubscribed,
)
from taskflow.events.operator import OperatorActed
from taskflow.events.task import (
    DispatchRejected,
    ScheduleCreated,
    ScheduleDeleted,
    TaskCancelled,
    TaskCancelRequested,
    TaskDeadLettered,
    TaskFailed,
    TaskLogged,
    TaskProgressed,
    TaskQueued,
    TaskReclaimed,
    TaskStarted,
    TaskSubmitted,
    TaskSucceeded,
    TaskTimedOut,
)
from taskflow.events.upcasters import upcast
from taskflow.events.worker import WorkerDied, WorkerPaused, WorkerResumed, WorkerStarted, WorkerStopped

AnyEvent = (
    TaskSubmitted
    | TaskStarted
    | TaskSucceeded
    | TaskTimedOut
    | TaskFailed
    | TaskReclaimed
    | TaskDeadLettered
    | TaskCancelRequested
    | TaskCancelled
    | TaskLogged
    | TaskProgressed
    | TaskQueued
    | WorkerStarted
    | WorkerStopped
    | ScheduleCreated
    | ScheduleDeleted
    | WorkerDied
    | WorkerPaused
    | WorkerResumed
    | DispatchRejected
    | OperatorActed
    | CampaignCreated
    | RecipientsAdded
    | CampaignStarted
    | CampaignPaused
    | CampaignResumed
    | FailedResent
    | RecipientSent
    | RecipientFailed
    | RecipientSkipped
    | RecipientUnsubscribed
    | CampaignCompleted
)

EVENT_TYPES: Final[tuple[type[AnyEvent], ...]] = AnyEvent.__args__


def _current_version(event_type: type[AnyEvent]) -> int:
    field = next(f for f in msgspec.structs.fields(event_type) if f.name == "schema_version")
    return int(field.default)


def _tag(event_type: type[AnyEvent]) -> str:
    return str(event_type.__struct_config__.tag)


_TAGS: Final[dict[type[AnyEvent], str]] = {t: _tag(t) for t in EVENT_TYPES}


def tag_of(event: AnyEvent) -> str:
    """The wire name of an event, also stored as the stream entry's ``type`` field."""
    return _TAGS[type(event)]


# Wire tag -> the version this code writes; a stored payload below it is upcast first.
CURRENT_VERSION: Final[dict[str, int]] = {_tag(t): _current_version(t) for t in EVENT_TYPES}
_CURRENT_BY_TYPE: Final[dict[type[AnyEvent], int]] = {t: _current_version(t) for t in EVENT_TYPES}

_encoder = msgspec.json.Encoder()
_decoder: Final[msgspec.json.Decoder[AnyEvent]] = msgspec.json.Decoder(AnyEvent)
_raw_decoder: Final = msgspec.json.Decoder(dict[str, Any])


class EventDecodeError(TaskFlowError, ValueError):
    """Raised when a stored payload is not a known event (corrupt entry or unknown type).
    A ValueError too, as msgspec's own decode errors are."""


def encode(event: AnyEvent) -> bytes:
    """The stored payload. ``event_id`` is left out: the stream assigns it."""
    if event.event_id:
        event = msgspec.structs.replace(event, event_id="")
    return _encoder.encode(event)


def decode(event_id: str, payload: bytes) -> AnyEvent:
    """Decode a stored payload into the current shape, upcasting old versions."""
    return decode_stored(event_id, payload)[0]


def decode_stored(event_id: str, payload: bytes) -> tuple[AnyEvent, int]:
    """``decode``, plus the schema version the payload was stored with (the archive keeps it)."""
    try:
        event = _decoder.decode(payload)
        stored = event.schema_version
        if stored != _CURRENT_BY_TYPE[type(event)]:
            event, stored = _decode_old(payload)
    except msgspec.ValidationError:
        # An old payload may not even type-check against today's shape.
        event, stored = _decode_old(payload)
    except msgspec.DecodeError as e:
        raise EventDecodeError(f"event {event_id}: {e}") from e
    return msgspec.structs.replace(event, event_id=event_id), stored


def _decode_old(payload: bytes) -> tuple[AnyEvent, int]:
    try:
        raw = _raw_decoder.decode(payload)
        tag = raw.get("type")
        if not isinstance(tag, str) or tag not in CURRENT_VERSION:
            raise EventDecodeError(f"unknown event type {tag!r}")
        stored = int(raw.get("schema_version", 1))
        # Round-trip through JSON so raw user fields (args, result) stay msgspec.Raw.
        return _decoder.decode(_encoder.encode(upcast(raw, CURRENT_VERSION[tag]))), stored
    except EventDecodeError:
        raise
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError, TypeError, KeyError) as e:
        # Valid JSON that is no event at all ([], "x", {"type": []}, a bad version field).
        raise EventDecodeError(f"not a known event: {e}") from e
