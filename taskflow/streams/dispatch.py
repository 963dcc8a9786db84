"""Whether a submission is dispatched now, held or waiting, and the held form of a dispatch
(scheduled or awaiting a retry)."""

from __future__ import annotations

from typing import Literal

import msgspec

from taskflow.events import Priority, TaskSubmitted


class HeldDispatch(msgspec.Struct, frozen=True, kw_only=True):
    """Everything needed to put a task on its dispatch stream later, without reading the
    event log again: stored in the held hash, keyed by task id, until its time comes."""

    task_id: str
    event_id: str
    event: str  # the TaskSubmitted payload as stored
    retry_count: int
    priority: Priority


_held_decoder = msgspec.json.Decoder(HeldDispatch)


def encode_held(held: HeldDispatch) -> bytes:
    return msgspec.json.encode(held)


def decode_held(raw: str | bytes) -> HeldDispatch:
    return _held_decoder.decode(raw)


DispatchMode = Literal["dispatch", "schedule", "wait"]
InitialStatus = Literal["PENDING", "SCHEDULED", "WAITING"]
# What the projection and the submit answer call a task in each mode, before it runs.
INITIAL_STATUS: dict[DispatchMode, InitialStatus] = {"dispatch": "PENDING", "schedule": "SCHEDULED", "wait": "WAITING"}


def dispatch_mode(event: TaskSubmitted) -> DispatchMode:
    """Whether a submission goes on its dispatch stream at once, is held until its
    ``scheduled_at``, or waits for its parents. Decided here only, from the event alone
    (its ``occurred_at`` is "now"): submit.lua takes the answer, the gateway answers with
    it and the projection folds with it, so the three can never disagree."""
    if event.waits_for_parents:
        return "wait"
    if event.scheduled_at is not None and event.scheduled_at > event.occurred_at:
        return "schedule"
    return "dispatch"


def due_ms(event: TaskSubmitted) -> int | None:
    """When a held task is due (ms); None for one dispatched at once or waiting."""
    if dispatch_mode(event) != "schedule":
        return None
    assert event.scheduled_at is not None  # "schedule" says so
    return int(event.scheduled_at.timestamp() * 1000)
