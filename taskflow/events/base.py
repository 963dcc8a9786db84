"""The envelope every event shares (ARCHITECTURE invariant 1)."""

from __future__ import annotations

from datetime import datetime
from typing import NotRequired, TypedDict

import msgspec


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", gc=False):
    """A fact that happened. Subclasses set an explicit wire tag, never the class name.

    ``event_id`` is the Redis stream id the event was appended under; it is not part of
    the stored payload but filled in when the event is read back, so it is always the id
    the stream assigned. No ``forbid_unknown_fields``: an old reader must skip fields a
    newer writer added during a rolling deploy.

    ``gc=False`` (inherited): events hold only plain values, never a reference back to a
    container, so they cannot be in a cycle; the collector then skips the tens of
    thousands a projector or worker holds, which cost it ~30% of its fold time.
    """

    aggregate_id: str
    occurred_at: datetime
    correlation_id: str
    causation_id: str | None = None
    traceparent: str | None = None
    # The acting user (JWT subject) or the process that decided; ROADMAP: ownership.
    actor: str | None = None
    # The gateway request that appended it (X-Request-ID), to go from a client's
    # complaint to the events it caused; None for what no request caused.
    request_id: str | None = None
    schema_version: int = 1
    event_id: str = ""


class Envelope(TypedDict):
    """The envelope fields a writer fills for an event, as keyword arguments: the one
    typed way to pass them on (``TaskStarted(**envelope, ...)``), so an event is never
    built from an untyped dict."""

    aggregate_id: str
    occurred_at: datetime
    correlation_id: str
    causation_id: str | None
    traceparent: str | None
    actor: str | None
    request_id: NotRequired[str | None]
