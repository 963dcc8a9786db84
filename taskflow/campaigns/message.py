"""One campaign mail as it goes on the wire (pure: no I/O, no clock).

Bulk-sender rules the big mailbox providers enforce (Gmail, Yahoo, 2024): a
``List-Unsubscribe`` HTTPS link with ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``
(RFC 8058), a visible unsubscribe link in the body, a stable Message-ID (so a resend after
a crash is recognised as the same mail), and DKIM over those headers (``signing.py``).
"""

from __future__ import annotations

import html
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

import msgspec

from taskflow.campaigns.errors import HeaderInjection

# RFC 5322's hard line limit, not its 78-character advice: at 78 the library rewrites a
# long List-Unsubscribe URL as RFC 2047 encoded-words, which no client reads as a URL.
# raise_on_defect: a header the library finds malformed is refused, never sent.
SMTP_POLICY = policy.SMTP.clone(max_line_length=998, raise_on_defect=True)
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


def build_message(rendered: Rendered, addressing: Addressing, now: datetime) -> EmailMessage:
    """The multipart/alternative mail; ``HeaderInjection`` when any header value carries a
    line break (it would let a recipient's name or a template add headers, e.g. Bcc)."""
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
    message = EmailMessage(policy=SMTP_POLICY)
    try:
        message["From"] = Address(display_name=sender_name, addr_spec=sender_address)
        message["To"] = Address(display_name=addressing.to_name, addr_spec=addressing.to_email.strip())
        message["Subject"] = rendered.subject
    except (ValueError, IndexError) as e:  # the address parser's errors (IndexError on some empty parts)
        raise HeaderInjection(f"malformed header value: {e}") from e
    message["Date"] = format_datetime(now)
    message["Message-ID"] = addressing.message_id
    message["List-Unsubscribe"] = f"<{addressing.unsubscribe_url}>"
    message["List-Unsubscribe-Post"] = ONE_CLICK
    text, body = with_unsubscribe_footer(rendered, addressing.unsubscribe_url)
    message.set_content(text)
    message.add_alternative(body, subtype="html")
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
