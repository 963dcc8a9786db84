"""What an SMTP error means for the recipient (pure: ``smtp.refusal_of``)."""

from __future__ import annotations

import aiosmtplib
import pytest

from taskflow.campaigns.smtp import Refusal, refusal_of


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
