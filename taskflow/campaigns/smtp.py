"""SMTP for campaign mail: pooled connections per worker process, and what a server's
refusal means for the recipient (pure: ``refusal_of``)."""

from __future__ import annotations

import socket

import aiosmtplib
import msgspec

from taskflow.settings import Settings

# Connections kept open between sends, per worker process: at least the task concurrency
# that sends at once, so a busy worker opens each once (a connection, EHLO, maybe a TLS
# handshake and a login per mail cost more than the mail: with 8 kept and 100 sending,
# most mails paid for a new connection, docs/benchmarks.md).
MAX_IDLE_CONNECTIONS = 128


class SmtpServer(msgspec.Struct, frozen=True):
    host: str
    port: int
    username: str
    password: str
    starttls: bool
    timeout_s: float

    @classmethod
    def of(cls, settings: Settings) -> SmtpServer:
        return cls(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_username,
            settings.smtp_password,
            settings.smtp_starttls,
            settings.smtp_timeout_seconds,
        )


class Refusal(msgspec.Struct, frozen=True):
    """What an SMTP error means: ``permanent`` (5xx: never retried), ``bounced`` (the
    server refused the recipient itself), the code (None when the connection failed) and
    the server's own words."""

    permanent: bool
    bounced: bool
    smtp_code: int | None
    text: str


def refusal_of(error: aiosmtplib.SMTPException) -> Refusal:
    """5xx is permanent (RFC 5321 section 4.2.1), 4xx and connection trouble temporary.
    A refused login is ours to fix, not the recipient's: temporary, so the sends wait
    (with backoff) for corrected credentials instead of failing the whole campaign."""
    if isinstance(error, aiosmtplib.SMTPAuthenticationError):
        return Refusal(False, False, error.code, f"{error.code} {error.message}")
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused) and error.recipients:
        first = error.recipients[0]
        return Refusal(_permanent(first.code), _permanent(first.code), first.code, f"{first.code} {first.message}")
    if isinstance(error, aiosmtplib.SMTPRecipientRefused):
        return Refusal(_permanent(error.code), _permanent(error.code), error.code, f"{error.code} {error.message}")
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return Refusal(_permanent(error.code), False, error.code, f"{error.code} {error.message}")
    return Refusal(False, False, None, str(error) or type(error).__name__)


def _permanent(code: int) -> bool:
    return 500 <= code <= 599


class SmtpPool:
    """Open connections to one server, one transaction at a time on each."""

    def __init__(self, server: SmtpServer) -> None:
        self.server = server
        self._idle: list[aiosmtplib.SMTP] = []
        # EHLO's name, looked up once: aiosmtplib would ask socket.getfqdn() (a resolver
        # call, in a thread) for every new connection.
        self._local_hostname = socket.getfqdn()

    async def send(self, message: bytes, sender: str, recipient: str) -> str:
        """One mail transaction; the server's final reply. A pooled connection the server
        has since closed is replaced once (the transaction had not begun on it)."""
        reused = bool(self._idle)
        client = self._idle.pop() if reused else await self._connect()
        try:
            _, reply = await client.sendmail(sender, [recipient], message)
        except aiosmtplib.SMTPServerDisconnected:
            _close(client)
            if not reused:
                raise
            client = await self._connect()
            try:
                _, reply = await client.sendmail(sender, [recipient], message)
            except BaseException:
                _close(client)
                raise
        except BaseException:
            # A refusal leaves the connection usable, but a half-done transaction might
            # not: start the next mail on a fresh one (RSET would cost the same trip).
            _close(client)
            raise
        if len(self._idle) < MAX_IDLE_CONNECTIONS:
            self._idle.append(client)
        else:
            _close(client)
        return reply

    async def _connect(self) -> aiosmtplib.SMTP:
        server = self.server
        client = aiosmtplib.SMTP(
            hostname=server.host,
            port=server.port,
            username=server.username or None,
            password=server.password or None,
            start_tls=server.starttls,
            timeout=server.timeout_s,
            local_hostname=self._local_hostname,
        )
        await client.connect()
        return client

    async def close(self) -> None:
        while self._idle:
            _close(self._idle.pop())


def _close(client: aiosmtplib.SMTP) -> None:
    """Close without QUIT: the connection may be broken, and nothing waits for the reply."""
    client.close()
