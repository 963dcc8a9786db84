"""The dev stack's SMTP sink keeps every mail as an .eml file; `taskflow dev` points the
workers at it and says where the mail is."""

from __future__ import annotations

import smtplib
from email import message_from_bytes
from email.message import EmailMessage
from pathlib import Path

from taskflow.dev.mail_sink import start_mail_sink
from taskflow.dev.stack import DevStack


def test_the_sink_keeps_each_mail_as_an_eml_file(tmp_path: Path) -> None:
    server, port = start_mail_sink(tmp_path / "mail")
    try:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "a@example.com", "b@example.com", "Hi"
        message.set_content("hello")
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.send_message(message, to_addrs=["b@example.com", "hidden@example.com"])
    finally:
        server.stop()
    (kept,) = list((tmp_path / "mail").glob("*.eml"))
    parsed = message_from_bytes(kept.read_bytes())
    assert parsed["Subject"] == "Hi" and parsed.get_payload().strip() == "hello"
    assert parsed["X-Sink-Recipients"] == "b@example.com, hidden@example.com"


def test_the_dev_stack_sends_to_the_sink_unless_an_smtp_server_is_configured(tmp_path: Path) -> None:
    environ = {
        "TASKFLOW_DATA_DIR": str(tmp_path),
        "TASKFLOW_REDIS_URL": "redis://x",
        "TASKFLOW_DATABASE_URL": "postgresql://x/y",
    }
    stack = DevStack(environ=dict(environ))
    stack.start_servers()
    try:
        assert stack.environ["TASKFLOW_SMTP_HOST"] == "127.0.0.1"
        assert f"captured mail in {tmp_path / 'mail'}" in stack.mail_note()
        with smtplib.SMTP("127.0.0.1", int(stack.environ["TASKFLOW_SMTP_PORT"]), timeout=10) as client:
            client.sendmail("a@example.com", ["b@example.com"], b"Subject: x\r\n\r\nbody")
        assert len(list((tmp_path / "mail").glob("*.eml"))) == 1
    finally:
        stack.stop()
    configured = DevStack(environ={**environ, "TASKFLOW_SMTP_HOST": "smtp.example.com", "TASKFLOW_SMTP_PORT": "587"})
    configured.start_servers()
    configured.stop()
    assert "sent through smtp.example.com:587" in configured.mail_note()
