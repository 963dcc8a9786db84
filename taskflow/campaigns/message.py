"""One campaign mail as it goes on the wire (pure: no I/O, no clock).

Bulk-sender rules the big mailbox providers enforce (Gmail, Yahoo, 2024): a
``List-Unsubscribe`` HTTPS link with ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``
(RFC 8058), a visible unsubscribe link in the body, a stable Message-ID (so a resend after
a crash is recognised as the same mail), and DKIM over those headers (``signing.py``).
"""

from __future__ import annotations

import binascii
import functools
import html
import re
from datetime import datetime
from email.header import Header
from email.utils import format_datetime, formataddr, parseaddr

import msgspec

from taskflow.campaigns.errors import HeaderInjection

# A plain address as the intake accepted it (email-validator): no spaces, brackets,
# quotes or control characters that could change the header's meaning.
_ADDRESS = re.compile(r"[^\s<>()\[\],;:\\\"@]+@[^\s<>()\[\],;:\\\"@]+")
ONE_CLICK = "List-Unsubscribe=One-Click"
CRLF = b"\r\n"
# RFC 5322's hard limit for a header line, and RFC 2045's for a quoted-printable line.
MAX_LINE = 998
QP_LINE = 76


class Rendered(msgspec.Struct, frozen=True):
    """A recipient's mail after templating (``rendering.render_for``)."""

    subject: str
    html: str
    text: str


class Addressing(msgspec.Struct, frozen=True):
    """Who sends to whom, and the mail's identity."""

    sender: str  # "Name <address>" (TASKFLOW_SMTP_FROM)
    to_email: str
    to_name: str
    message_id: str
    unsubscribe_url: str


def sender_domain(sender: str) -> str:
    """The domain of the From address: it names the Message-IDs (``ids.message_id``)."""
    _, at, domain = parseaddr(sender)[1].rpartition("@")
    return domain if at and domain else "localhost"


def build_message(rendered: Rendered, addressing: Addressing, now: datetime) -> bytes:
    """The multipart/alternative mail as it goes on the wire (CRLF lines, every header
    one line of at most 998 characters); ``HeaderInjection`` when any header value carries
    a line break (it would let a recipient's name or a template add headers, e.g. Bcc) or
    an address is not one.

    Written out directly from checked, pre-encoded header values and quoted-printable
    parts: Python's ``email`` package parses and folds every header it serialises, which
    cost about a third of a sending worker's CPU (docs/benchmarks.md). The tests read what
    this writes back with that package."""
    sender_name, sender_address = _parsed_sender(addressing.sender)
    values = {
        "From": addressing.sender,
        "To name": addressing.to_name,
        "To address": addressing.to_email,
        "Subject": rendered.subject,
        "Message-ID": addressing.message_id,
        "List-Unsubscribe": addressing.unsubscribe_url,
    }
    for header, value in values.items():
        if "\r" in value or "\n" in value:
            raise HeaderInjection(f"{header} holds a line break; refused")
    to_address = addressing.to_email.strip()
    for header, address in (("From", sender_address), ("To", to_address)):
        if not _ADDRESS.fullmatch(address):
            raise HeaderInjection(f"{header}: {address!r} is not an address")
        if not address.isascii():
            raise HeaderInjection(f"{header}: {address!r} is not ASCII (mail to it would need SMTPUTF8)")
    # The boundary from the Message-ID: unique per mail, and it cannot occur in the parts:
    # they are quoted-printable, where every "=" starts an escape or a soft line break.
    boundary = "==tf-" + "".join(c for c in addressing.message_id if c.isalnum())[:40] + "=="
    subject = _header_value("Subject", rendered.subject)
    head = "\r\n".join(
        (
            f'Content-Type: multipart/alternative; boundary="{boundary}"',
            "MIME-Version: 1.0",
            f"From: {_mailbox('From', sender_name, sender_address)}",
            f"To: {_mailbox('To', addressing.to_name, to_address)}",
            f"Subject: {subject}",
            f"Date: {format_datetime(now)}",
            f"Message-ID: {addressing.message_id}",
            f"List-Unsubscribe: <{addressing.unsubscribe_url}>",
            f"List-Unsubscribe-Post: {ONE_CLICK}",
        )
    ).encode("ascii")
    text, body = with_unsubscribe_footer(rendered, addressing.unsubscribe_url)
    delimiter = b"--" + boundary.encode("ascii")
    return b"".join(
        (
            head,
            CRLF * 2,
            delimiter,
            CRLF,
            _text_part("plain", text),
            delimiter,
            CRLF,
            _text_part("html", body),
            delimiter,
            b"--",
            CRLF,
        )
    )


def _header_value(name: str, value: str) -> str:
    """``value`` as is when it is ASCII and fits one line of 998 characters; else as
    RFC 2047 encoded-words of at most 75 characters, folded onto CRLF-space lines (a
    mail with a longer line may be refused or broken by a relay, DKIM with it)."""
    if value.isascii() and len(name) + 2 + len(value) <= MAX_LINE:
        return value
    return Header(value, "utf-8", header_name=name).encode(linesep="\r\n")


def _mailbox(name: str, display_name: str, address: str) -> str:
    """``Name <address>``: the name quoted as needed, or encoded and folded when it is not
    ASCII or too long for one line (``_header_value``)."""
    plain = formataddr((display_name, address))
    if display_name.isascii() and len(name) + 2 + len(plain) <= MAX_LINE:
        return plain
    return f"{_header_value(name, display_name)} <{address}>"


def _within_76(lines: list[bytes]) -> list[bytes]:
    """Quoted-printable lines of at most 76 characters (RFC 2045): ``b2a_qp`` does not
    count the ``=20`` / ``=09`` it writes for whitespace at a line's end. Longer lines
    get soft line breaks, never inside an ``=XX`` escape."""
    if all(len(line) <= QP_LINE for line in lines):
        return lines
    wrapped: list[bytes] = []
    for line in lines:
        while len(line) > QP_LINE:
            cut = QP_LINE - 1
            escape_at = line.rfind(b"=", cut - 2, cut)
            if escape_at >= 0:
                cut = escape_at
            wrapped.append(line[:cut] + b"=")
            line = line[cut:]
        wrapped.append(line)
    return wrapped


@functools.lru_cache(maxsize=16)
def _parsed_sender(sender: str) -> tuple[str, str]:
    """TASKFLOW_SMTP_FROM as name and address: one setting, parsed once, not per mail."""
    return parseaddr(sender)


def _text_part(subtype: str, content: str) -> bytes:
    """A UTF-8 text part, quoted-printable (readable on the wire, safe on any 8-bit
    path, lines within 76 characters), ending in the CRLF that precedes the next delimiter."""
    lines = content.replace("\r\n", "\n").replace("\r", "\n")
    encoded = CRLF.join(_within_76(binascii.b2a_qp(lines.encode("utf-8"), istext=True).split(b"\n")))
    return b"".join(
        (
            f'Content-Type: text/{subtype}; charset="utf-8"\r\n'.encode("ascii"),
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n",
            encoded,
            CRLF,
        )
    )


def with_unsubscribe_footer(rendered: Rendered, url: str) -> tuple[str, str]:
    """Text and HTML, each with a visible unsubscribe link: the template's own where it
    used ``unsubscribe_url``, else a footer appended."""
    text = rendered.text if url in rendered.text else f"{rendered.text}\n\n--\nUnsubscribe: {url}\n"
    escaped = html.escape(url, quote=True)
    body = rendered.html
    if url not in body and escaped not in body:
        body = f'{body}\n<p style="font-size:small;color:#666"><a href="{escaped}">Unsubscribe</a></p>\n'
    return text, body
