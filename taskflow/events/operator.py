"""Events of people acting on the system (aggregate_id = what they acted on)."""

from __future__ import annotations

from typing import Literal

from taskflow.events.base import Event

Action = Literal["cancel", "retry", "requeue", "claim", "ack", "pause", "resume", "swap", "start", "resend"]
TargetKind = Literal["task", "worker", "projections", "campaign"]


class OperatorActed(Event, frozen=True, kw_only=True, tag="operator.acted"):
    """An operator (``actor``) did ``action`` to ``aggregate_id`` for ``reason``. Appended
    in the same step as the action's own events, so the audit trail (``GET
    /api/v1/audit``) holds every action that took effect and nothing that did not."""

    action: Action
    target_kind: TargetKind
    reason: str = ""
    # Where it came from: the REST gateway or the CLI.
    via: Literal["rest", "cli"] = "rest"
    # What the action touched, for the record (a dispatch entry id, the consumer it left).
    detail: dict[str, str] = {}
