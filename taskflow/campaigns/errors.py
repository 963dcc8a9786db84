"""Errors of campaign sending."""

from __future__ import annotations

from taskflow.errors import TaskFlowError


class HeaderInjection(TaskFlowError):
    """Raised when a mail header would carry a line break or a malformed address: the mail
    is refused before anything reaches the SMTP server."""


class SmtpTemporaryFailure(TaskFlowError):
    """Raised when the SMTP server answered 4xx or the connection failed: the send task
    is retried with backoff."""

    def __init__(self, message: str, smtp_code: int | None = None) -> None:
        super().__init__(message)
        self.smtp_code = smtp_code
