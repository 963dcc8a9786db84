"""What the ``send_email`` task takes and answers: its kwargs and its result. Kept apart
from ``send`` (SMTP, templates, DKIM) so that a worker loads the sending machinery on its
first send, not at start (``tasks.builtin``)."""

from __future__ import annotations

from typing import Literal

import msgspec

# SUPERSEDED: the ledger gave the recipient to another task (a pause took it back, a
# resume gave it to a new one): this task mails no one.
SendStatus = Literal["SENT", "FAILED", "BOUNCED", "SKIPPED", "SUPERSEDED"]


class SendRequest(msgspec.Struct, frozen=True):
    """The task's kwargs (the shared contract)."""

    campaign_id: str
    recipient_id: str
    email: str
    name: str = ""
    fields: dict[str, str] = {}


class SendResult(msgspec.Struct, frozen=True, omit_defaults=True):
    """The task's result."""

    status: SendStatus
    message_id: str | None = None
    reason: str = ""
