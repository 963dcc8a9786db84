"""A campaign mail as built for the wire: headers, parts, footer, no header injection, DKIM."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.utils import parseaddr
from pathlib import Path

import dkim
import pytest

from taskflow.campaigns.errors import HeaderInjection
from taskflow.campaigns.message import Addressing, Rendered, build_message, sender_domain, with_unsubscribe_footer
from taskflow.campaigns.signing import DkimKey, sign

URL = "https://mail.example.com/unsubscribe/abc.def"
NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
RENDERED = Rendered(subject="Hello Zoë", html="<p>Hi Zoë</p>", text="Hi Zoë")


def _addressing(**changes: str) -> Addressing:
    fields = {
        "sender": "TaskFlow <noreply@example.com>",
        "to_email": "zoe@example.com",
        "to_name": "Zoë Müller, Jr.",
        "message_id": "<m1@example.com>",
        "unsubscribe_url": URL,
    }
    fields.update(changes)
    return Addressing(**fields)


def _wire(rendered: Rendered = RENDERED, **changes: str) -> bytes:
    return build_message(rendered, _addressing(**changes), NOW)


def test_the_mail_carries_the_bulk_sender_headers() -> None:
    parsed = message_from_bytes(_wire(), policy=policy.default)
    assert parsed["List-Unsubscribe"] == f"<{URL}>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["Message-ID"] == "<m1@example.com>"
    assert parsed["To"].addresses[0].display_name == "Zoë Müller, Jr."
    assert parsed["To"].addresses[0].addr_spec == "zoe@example.com"
    assert parsed["Subject"] == "Hello Zoë"
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]


@pytest.mark.parametrize(
    "rendered",
    [
        RENDERED,
        Rendered(subject="plain", html="<p>a = b; 100% é</p>\n", text="trailing spaces   \nand\ttabs\t\n"),
        Rendered(subject="long " * 40, html="<p>" + "x" * 2000 + "</p>", text="é" * 500),
        Rendered(subject="dots", html=".\n..\n.leading", text="line\r\nbreaks\rof every kind\n.\n"),
        Rendered(subject="Ünïcödé " * 12, html="==tf-boundary-lookalike== --==tf-x==", text="--==tf-m1examplecom==--"),
    ],
)
def test_the_parts_read_back_exactly_as_rendered(rendered: Rendered) -> None:
    wire = _wire(rendered)
    parsed = message_from_bytes(wire, policy=policy.default)
    text, body = with_unsubscribe_footer(rendered, URL)
    parts = list(parsed.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert _lines(parts[0].get_content()) == _lines(text)
    assert _lines(parts[1].get_content()) == _lines(body)
    assert parsed["Subject"] == rendered.subject
    assert all(len(line) <= 998 for line in wire.split(b"\r\n"))
    assert b"\n" not in wire.replace(b"\r\n", b"") and b"\r" not in wire.replace(b"\r\n", b"")


@pytest.mark.parametrize(
    ("to_name", "subject"),
    [
        ("A" * 1000, "S" * 1000),  # as long as intake allows, ASCII, without a space to fold at
        ("é" * 1000, "Ü" * 1000),  # non-ASCII: encoded-words of at most 75 characters
        ("Ann " * 250, "word " * 200),
    ],
)
def test_long_names_and_subjects_are_folded_within_the_line_limit(to_name: str, subject: str) -> None:
    wire = _wire(Rendered(subject=subject, html="<p>h</p>", text="t"), to_name=to_name)
    head = wire.split(b"\r\n\r\n", 1)[0]
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))
    # Decoded as RFC 2047 says (whitespace between encoded-words is not text), which mail
    # clients do and the modern email policy's address parser does not.
    parsed = message_from_bytes(wire)
    assert parseaddr(str(make_header(decode_header(parsed["To"])))) == (to_name.strip(), "zoe@example.com")
    assert str(make_header(decode_header(parsed["Subject"]))) == subject


@pytest.mark.parametrize("line", ["x" * 74 + " ", "x" * 75 + "\t", "é" * 30 + " " * 20, "a" * 73 + "=" + " "])
def test_quoted_printable_lines_stay_within_76_characters(line: str) -> None:
    """b2a_qp does not count the =20 / =09 it writes for whitespace at a line's end."""
    wire = _wire(Rendered(subject="s", html=f"<p>{line}</p>", text=f"{line}\n{line}"))
    body = wire.split(b"\r\n\r\n", 1)[1]
    assert all(len(row) <= 76 for row in body.split(b"\r\n"))
    parts = list(message_from_bytes(wire, policy=policy.default).iter_parts())
    assert _lines(parts[0].get_content()).startswith(f"{line}\n{line}")


def _lines(content: str) -> str:
    """Line breaks of any kind as one: on the wire every line ends in CRLF."""
    return content.replace("\r\n", "\n").replace("\r", "\n")


def test_a_long_unsubscribe_url_stays_one_readable_header_line() -> None:
    url = "https://mail.example.com/unsubscribe/" + "a" * 300
    wire = _wire(unsubscribe_url=url)
    assert f"List-Unsubscribe: <{url}>\r\n".encode() in wire


def test_both_parts_get_an_unsubscribe_footer_when_the_template_has_none() -> None:
    text, body = with_unsubscribe_footer(RENDERED, URL)
    assert URL in text and f'href="{URL}"' in body


def test_a_template_that_links_unsubscribe_itself_gets_no_footer() -> None:
    own = Rendered(subject="s", html=f'<a href="{URL}">leave</a>', text=f"leave: {URL}")
    assert with_unsubscribe_footer(own, URL) == (own.text, own.html)


@pytest.mark.parametrize(
    "changes",
    [
        {"to_name": "x\r\nBcc: evil@x"},
        {"to_email": "a@example.com\r\nBcc: evil@x"},
        {"to_email": "a@example.com\nBcc: evil@x"},
        {"unsubscribe_url": URL + "\r\nBcc: evil@x"},
        {"sender": "T <t@example.com>\rBcc: evil@x"},
    ],
)
def test_a_line_break_in_any_header_value_is_refused(changes: dict[str, str]) -> None:
    with pytest.raises(HeaderInjection):
        _wire(**changes)


def test_a_line_break_in_the_subject_is_refused() -> None:
    with pytest.raises(HeaderInjection):
        _wire(Rendered(subject="x\r\nBcc: evil@x", html="h", text="t"))


def test_a_malformed_address_is_refused() -> None:
    with pytest.raises(HeaderInjection):
        _wire(to_email="not an address <")


def test_an_address_that_is_not_ascii_is_refused() -> None:
    # It would need SMTPUTF8, which sending does not use; the intake refuses it first.
    with pytest.raises(HeaderInjection, match="not ASCII"):
        _wire(to_email="jos\u00e9@example.com")


def test_the_sender_domain_names_the_message_ids() -> None:
    assert sender_domain("TaskFlow <noreply@mail.example.com>") == "mail.example.com"
    assert sender_domain("nobody") == "localhost"


@pytest.fixture(scope="module")
def dkim_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    folder: Path = tmp_path_factory.mktemp("dkim")
    private, public = folder / "key.pem", folder / "pub.der"
    subprocess.run(["openssl", "genrsa", "-out", str(private), "2048"], check=True, capture_output=True)
    subprocess.run(
        ["openssl", "rsa", "-in", str(private), "-pubout", "-outform", "DER", "-out", str(public)],
        check=True,
        capture_output=True,
    )
    return private.read_bytes(), public.read_bytes()


def test_a_signed_mail_verifies_against_the_public_key(dkim_key: tuple[bytes, bytes]) -> None:
    import base64

    private, public = dkim_key
    signed = sign(_wire(), DkimKey("s1", "example.com", private))
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"s1._domainkey.example.com."
        return record

    assert dkim.verify(signed, dnsfunc=dns)
    header = message_from_bytes(signed)["DKIM-Signature"].replace("\r\n", "").replace(" ", "")
    signed_headers = header.split("h=")[1].split(";")[0].lower().split(":")
    assert {"from", "to", "subject", "message-id", "list-unsubscribe", "list-unsubscribe-post"} <= set(signed_headers)
    # A relay that rewrites the one-click link breaks the signature.
    assert not dkim.verify(signed.replace(b"abc.def", b"abc.xyz"), dnsfunc=dns)
