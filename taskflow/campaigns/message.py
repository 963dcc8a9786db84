"""One campaign mail as it goes on the wire (pure: no I/O, no clock).

Bulk-sender rules the big mailbox providers enforce (Gmail, Yahoo, 2024): a
``List-Unsubscribe`` HTTPS link with ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``
(RFC 8058), a visible unsubscribe link in the body, a stable Message-ID (so a resend after
a crash is recognised as the same mail), and DKIM over those headers (``signing.py``).
"""

from __future__ import annotations

import html
import re
from datetime import datetime
from email import policy
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, parseaddr

import msgspec

from taskflow.campaigns.errors import HeaderInjection

# RFC 5322's hard line limit, not its 78-character advice: at 78 a long List-Unsubscribe
# URL would be folded or encoded, and no client reads it as a URL then. CRLF: SMTP's.
WIRE_POLICY = policy.compat32.clone(max_line_length=998, linesep="\r\n")
# Text parts as UTF-8, quoted-printable: readable on the wire, safe for any 8-bit path.
_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP
# A plain address as the intake accepted it (email-validator): no spaces, brackets,
# quotes or control characters that could change the header's meaning.
_ADDRESS = re.compile(r"[^\s<>()\[\],;:\\\"@]+@[^\s<>()\[\],;:\\\"@]+")
ONE_CLICK = "List-Unsubscribe=One-Click"


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


def build_message(rendered: Rendered, addressing: Addressing, now: datetime) -> Message:
    """The multipart/alternative mail; ``HeaderInjection`` when any header value carries a
    line break (it would let a recipient's name or a template add headers, e.g. Bcc) or
    an address is not one.

    Built with the ``compat32`` MIME classes from checked, pre-encoded header values:
    the modern ``EmailMessage`` API parses every header it is given into objects and
    serialises them back, which cost about 45% of a sending worker's CPU (docs/benchmarks.md)."""
    sender_name, sender_address = parseaddr(addressing.sender)
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
    # The boundary from the Message-ID: unique per mail and free, where the generator would
    # draw a random one and scan both parts for it (4% of a sending worker's CPU). It
    # cannot occur in the parts: they are quoted-printable, where every "=" is encoded.
    boundary = "==tf-" + "".join(c for c in addressing.message_id if c.isalnum())[:40] + "=="
    message = MIMEMultipart("alternative", boundary=boundary, policy=WIRE_POLICY)
    message["From"] = formataddr((sender_name, sender_address), charset="utf-8")
    message["To"] = formataddr((addressing.to_name, to_address), charset="utf-8")
    subject = rendered.subject
    message["Subject"] = subject if subject.isascii() else Header(subject, "utf-8").encode()
    message["Date"] = format_datetime(now)
    message["Message-ID"] = addressing.message_id
    message["List-Unsubscribe"] = f"<{addressing.unsubscribe_url}>"
    message["List-Unsubscribe-Post"] = ONE_CLICK
    text, body = with_unsubscribe_footer(rendered, addressing.unsubscribe_url)
    # A Charset is what MIMEText takes at run time; typeshed only knows its name form.
    message.attach(MIMEText(text, "plain", _UTF8, policy=WIRE_POLICY))  # type: ignore[arg-type]
    message.attach(MIMEText(body, "html", _UTF8, policy=WIRE_POLICY))  # type: ignore[arg-type]
    return message


def with_unsubscribe_footer(rendered: Rendered, url: str) -> tuple[str, str]:
    """Text and HTML, each with a visible unsubscribe link: the template's own where it
    used ``unsubscribe_url``, else a footer appended."""
    text = rendered.text if url in rendered.text else f"{rendered.text}\n\n--\nUnsubscribe: {url}\n"
    escaped = html.escape(url, quote=True)
    body = rendered.html
    if url not in body and escaped not in body:
        body = f'{body}\n<p style="font-size:small;color:#666"><a href="{escaped}">Unsubscribe</a></p>\n'
    return text, body
