"""The dev stack's SMTP sink: an aiosmtpd server on a free loopback port that accepts
every mail and keeps it as an ``.eml`` file (open it in any mail client, or read it), so
campaigns can be tried without a real server and without mailing anyone.
"""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from taskflow.dev.ports import LOCALHOST, free_port
from taskflow.dev.process import RunningServer


class _KeepAsFiles:
    """aiosmtpd handler: each accepted mail becomes ``<ms>-<n>.eml`` in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self._lock:
            number = next(self._numbers)
        content = envelope.original_content or b""
        recipients = ", ".join(envelope.rcpt_tos)
        path = self.folder / f"{int(time.time() * 1000)}-{number:06d}.eml"
        # The envelope recipients in front, as a relay's Delivered-To: Bcc'd ones show.
        path.write_bytes(f"X-Sink-Recipients: {recipients}\r\n".encode() + content)
        return "250 Message captured by the TaskFlow dev sink"


def start_mail_sink(folder: Path, port: int | None = None) -> tuple[RunningServer, int]:
    """Listening on 127.0.0.1; the handle (its URL is the folder) and the port."""
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    controller = Controller(_KeepAsFiles(folder), hostname=LOCALHOST, port=port)
    controller.start()
    return RunningServer(url=folder.as_uri(), stop=controller.stop), port
