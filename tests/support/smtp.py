"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives and can be told
to refuse given recipients: 550 always, or 451 the first N times."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from taskflow.dev.ports import free_port


@dataclass
class Received:
    rcpt_tos: list[str]
    data: bytes
    at: float  # time.monotonic() when the server accepted it

    @property
    def message(self) -> EmailMessage:
        return cast("EmailMessage", message_from_bytes(self.data, policy=policy.default))


@dataclass
class RecordingHandler:
    """aiosmtpd handler: refusals by recipient address, every accepted mail kept."""

    permanent: dict[str, str] = field(default_factory=dict)  # address -> 550 text
    temporary: dict[str, int] = field(default_factory=dict)  # address -> 451s left
    received: list[Received] = field(default_factory=list)
    refused: list[tuple[str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        with self.lock:
            if address in self.permanent:
                self.refused.append((address, 550))
                return f"550 5.1.1 {self.permanent[address]}"
            if self.temporary.get(address, 0) > 0:
                self.temporary[address] -= 1
                self.refused.append((address, 451))
                return "451 4.7.1 greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            content = bytes(cast("Any", envelope.original_content))
            self.received.append(Received(list(envelope.rcpt_tos), content, time.monotonic()))
        return "250 Message accepted for delivery"

    def mails_to(self, address: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if address in r.rcpt_tos]


@contextmanager
def smtp_server() -> Iterator[tuple[RecordingHandler, int]]:
    handler = RecordingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()
