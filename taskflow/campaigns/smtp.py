"""SMTP for campaign mail: pooled connections per worker process, and what a server's
refusal means for the recipient (pure: ``refusal_of``)."""

from __future__ import annotations

import re
import socket

import aiosmtplib
import msgspec
from aiosmtplib import SMTPStatus

from taskflow.errors import TaskFlowError
from taskflow.settings import Settings

# Connections kept open between sends, per worker process: at least the task concurrency
# that sends at once, so a busy worker opens each once (a connection, EHLO, maybe a TLS
# handshake and a login per mail cost more than the mail: with 8 kept and 100 sending,
# most mails paid for a new connection, docs/benchmarks.md).
MAX_IDLE_CONNECTIONS = 128
# An address that can stand on a MAIL or RCPT line as it is: ASCII, no spaces, brackets,
# quotes or control characters that could add parameters or commands (the intake and
# ``message.build_message`` refuse others first; this holds the line for any caller).
_ENVELOPE_ADDRESS = re.compile(r"[!#-'*+\-./0-9=?A-Z^-~]+@[!#-'*+\-./0-9=?A-Z^-~]+")


class UnsendableAddress(TaskFlowError):
    """An address that cannot stand on an SMTP command line."""


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
        has since closed is replaced once (the transaction had not begun on it).
        Raises ``UnsendableAddress`` before connecting when an address cannot be sent."""
        envelope = (envelope_address(sender), envelope_address(recipient))
        reused = bool(self._idle)
        client = self._idle.pop() if reused else await self._connect()
        try:
            reply = await _transaction(client, *envelope, message)
        except aiosmtplib.SMTPServerDisconnected:
            _close(client)
            if not reused:
                raise
            client = await self._connect()
            try:
                reply = await _transaction(client, *envelope, message)
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
        try:
            if client.is_ehlo_or_helo_needed:
                try:
                    await client.ehlo()
                except aiosmtplib.SMTPHeloError:
                    await client.helo()  # a server from before ESMTP
        except BaseException:
            _close(client)  # not pooled yet: nothing else would close it
            raise
        return client

    async def close(self) -> None:
        while self._idle:
            _close(self._idle.pop())


async def _transaction(client: aiosmtplib.SMTP, sender: bytes, recipient: bytes, message: bytes) -> str:
    """MAIL, RCPT and DATA for one recipient, raising what ``SMTP.sendmail`` raises for
    each refusal. Not ``sendmail`` itself: it parses and quotes both addresses with the
    ``email`` package on every mail (a tenth of a sending worker's CPU), where ours were
    checked once (``envelope_address``)."""
    size = [b"SIZE=%d" % len(message)] if client.supports_extension("size") else []
    reply = await client.execute_command(b"MAIL", b"FROM:" + sender, *size)
    if reply.code != SMTPStatus.completed:
        raise aiosmtplib.SMTPSenderRefused(reply.code, reply.message, sender.decode()[1:-1])
    reply = await client.execute_command(b"RCPT", b"TO:" + recipient)
    if reply.code not in (SMTPStatus.completed, SMTPStatus.will_forward):
        raise aiosmtplib.SMTPRecipientRefused(reply.code, reply.message, recipient.decode()[1:-1])
    return (await client.data(message)).message


def envelope_address(address: str) -> bytes:
    """``<address>`` for a MAIL or RCPT line; ``UnsendableAddress`` unless it is plainly one."""
    if not _ENVELOPE_ADDRESS.fullmatch(address):
        raise UnsendableAddress(f"{address!r} cannot be sent: not a plain ASCII address")
    return b"<" + address.encode("ascii") + b">"


def _close(client: aiosmtplib.SMTP) -> None:
    """Close without QUIT: the connection may be broken, and nothing waits for the reply."""
    client.close()
