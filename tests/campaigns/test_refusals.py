"""What an SMTP error means for the recipient (pure: ``smtp.refusal_of``)."""

from __future__ import annotations

import aiosmtplib
import pytest

from taskflow.campaigns.smtp import Refusal, UnsendableAddress, envelope_address, refusal_of


@pytest.mark.parametrize(
    ("error", "refusal"),
    [
        (
            aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(550, "no such user", "a@x.org")]),
            Refusal(True, True, 550, "550 no such user"),
        ),
        (aiosmtplib.SMTPRecipientRefused(451, "greylisted", "a@x.org"), Refusal(False, False, 451, "451 greylisted")),
        (aiosmtplib.SMTPDataError(554, "spam"), Refusal(True, False, 554, "554 spam")),
        (aiosmtplib.SMTPDataError(452, "full"), Refusal(False, False, 452, "452 full")),
        # A refused login is a configuration to fix: retried, not the recipient's failure.
        (aiosmtplib.SMTPAuthenticationError(535, "bad credentials"), Refusal(False, False, 535, "535 bad credentials")),
        (aiosmtplib.SMTPServerDisconnected("gone"), Refusal(False, False, None, "gone")),
    ],
)
def test_refusals(error: aiosmtplib.SMTPException, refusal: Refusal) -> None:
    assert refusal_of(error) == refusal


@pytest.mark.parametrize(
    ("address", "line"),
    [
        ("ann@example.com", b"<ann@example.com>"),
        ("o'neil+news/x@mail.example.org", b"<o'neil+news/x@mail.example.org>"),
        ("ann@example.com SIZE=1", None),  # an ESMTP parameter smuggled in
        ("ann@example.com>\r\nRCPT TO:<eve@example.com", None),
        ("<ann@example.com>", None),
        ("ann@example.com,eve@example.com", None),
        ("jos\u00e9@example.com", None),  # would need SMTPUTF8
        ("no-at-sign", None),
        ("a@b@c", None),
    ],
)
def test_envelope_addresses(address: str, line: bytes | None) -> None:
    """What may stand on a MAIL or RCPT line: the pool refuses anything else before it
    connects, as a permanent failure of that recipient."""
    if line is None:
        with pytest.raises(UnsendableAddress):
            envelope_address(address)
    else:
        assert envelope_address(address) == line
