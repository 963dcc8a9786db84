"""The send_email task end to end: real worker processes, real Redis, a real SMTP server
on loopback (aiosmtpd). Campaign state is written as the shared contract has it
(tests/support/campaigns.py), as campaign start will."""

from __future__ import annotations

import asyncio
import itertools
import ssl
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from redis.asyncio import Redis

from taskflow.campaigns.ids import recipient_id
from taskflow.campaigns.send import postponement_s
from taskflow.dev.ports import free_port
from taskflow.events import RecipientFailed, RecipientSent, RecipientSkipped, TaskFailed, TaskStarted, TaskSucceeded
from taskflow.settings import Settings
from taskflow.streams.keyspace import Keyspace
from tests.support.campaigns import Recipient, counters_of, ledger_of, seed_campaign, start_sending
from tests.support.processes import env_for, services, start
from tests.support.smtp import RecordingHandler, smtp_server
from tests.support.stack import all_events
from tests.support.waiting import eventually

FINAL = {"sent", "failed", "bounced", "skipped", "unsubscribed"}


@pytest.fixture
def smtp() -> Iterator[tuple[RecordingHandler, int]]:
    with smtp_server() as found:
        yield found


def _env(settings: Settings, port: int) -> dict[str, str]:
    return env_for(
        settings,
        TASKFLOW_SMTP_HOST="127.0.0.1",
        TASKFLOW_SMTP_PORT=str(port),
        TASKFLOW_SMTP_FROM="News <news@mail.example.com>",
        TASKFLOW_PUBLIC_URL="https://mail.example.com",
    )


async def _all_final(redis: Redis, settings: Settings, campaign_id: str) -> bool:
    ledger = await ledger_of(redis, settings, campaign_id)
    return bool(ledger) and set(ledger.values()) <= FINAL


def _results(events: list[object]) -> dict[str, dict[str, object]]:
    return {e.aggregate_id: msgspec.json.decode(e.result) for e in events if isinstance(e, TaskSucceeded)}


async def test_every_valid_recipient_gets_exactly_one_personalised_mail(
    redis: Redis, settings: Settings, smtp: tuple[RecordingHandler, int]
) -> None:
    handler, port = smtp
    people = [Recipient(f"user{i}@example.com", f"User {i}", {"code": f"C{i}"}) for i in range(6)]
    campaign_id = await seed_campaign(redis, settings, people)
    tasks = await start_sending(redis, settings, campaign_id, people)
    with services() as running:
        start(running, "worker", "--concurrency", "4", env=_env(settings, port))
        await eventually(lambda: _all_final(redis, settings, campaign_id), timeout_s=60)
    assert set((await ledger_of(redis, settings, campaign_id)).values()) == {"sent"}
    assert await counters_of(redis, settings, campaign_id) == {
        "status": "completed",
        "pending": "0",
        "sent": "6",
        "failed": "0",
        "skipped": "0",
    }
    message_ids = set()
    for person in people:
        (mail,) = handler.mails_to(person.email)
        message = mail.message
        assert message["Subject"] == f"Hello {person.name}"
        assert message["To"].addresses[0].display_name == person.name
        assert message["From"].addresses[0].addr_spec == "news@mail.example.com"
        assert message["List-Unsubscribe"].startswith("<https://mail.example.com/unsubscribe/")
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["Message-ID"].endswith("@mail.example.com>")
        message_ids.add(message["Message-ID"])
        html = message.get_body(("html",)).get_content()
        text = message.get_body(("plain",)).get_content()
        assert f"<b>{person.fields['code']}</b>" in html and person.fields["code"] in text
        unsubscribe_url = message["List-Unsubscribe"].strip("<>")
        assert unsubscribe_url in html and unsubscribe_url in text  # visible, not only a header
    assert len(message_ids) == len(people)
    events = await all_events(redis, settings)
    sent = [e for e in events if isinstance(e, RecipientSent)]
    assert sorted(e.recipient_id for e in sent) == sorted(recipient_id(campaign_id, p.email) for p in people)
    results = _results(events)
    assert {results[t.aggregate_id]["status"] for t in tasks} == {"SENT"}


async def test_a_550_recipient_bounces_at_once_with_the_server_text(
    redis: Redis, settings: Settings, smtp: tuple[RecordingHandler, int]
) -> None:
    handler, port = smtp
    good, bad = Recipient("good@example.com", "Good"), Recipient("bad@example.com", "Bad")
    handler.permanent[bad.email] = "mailbox unavailable"
    campaign_id = await seed_campaign(redis, settings, [good, bad])
    tasks = await start_sending(redis, settings, campaign_id, [good, bad], max_retries=3)
    with services() as running:
        start(running, "worker", env=_env(settings, port))
        start(running, "coordinator", env=_env(settings, port))  # it dispatches the retries it holds
        await eventually(lambda: _all_final(redis, settings, campaign_id), timeout_s=60)
    ledger = await ledger_of(redis, settings, campaign_id)
    assert ledger[recipient_id(campaign_id, bad.email)] == "bounced"
    assert handler.refused == [(bad.email, 550)] and handler.mails_to(bad.email) == []
    events = await all_events(redis, settings)
    (failed,) = [e for e in events if isinstance(e, RecipientFailed)]
    assert failed.bounced and failed.smtp_code == 550 and "mailbox unavailable" in failed.error
    bad_task = tasks[1].aggregate_id
    assert sum(isinstance(e, TaskStarted) and e.aggregate_id == bad_task for e in events) == 1
    assert not any(isinstance(e, TaskFailed) and e.aggregate_id == bad_task for e in events)
    assert _results(events)[bad_task]["status"] == "BOUNCED"
    assert (await counters_of(redis, settings, campaign_id))["failed"] == "1"


async def test_a_451_recipient_is_retried_with_backoff_and_delivered(
    redis: Redis, settings: Settings, smtp: tuple[RecordingHandler, int]
) -> None:
    handler, port = smtp
    person = Recipient("grey@example.com", "Grey")
    handler.temporary[person.email] = 2
    campaign_id = await seed_campaign(redis, settings, [person])
    (task,) = await start_sending(redis, settings, campaign_id, [person], max_retries=3)
    with services() as running:
        start(running, "worker", env=_env(settings, port))
        start(running, "coordinator", env=_env(settings, port))  # it dispatches the retries it holds
        await eventually(lambda: _all_final(redis, settings, campaign_id), timeout_s=60)
    assert handler.refused == [(person.email, 451), (person.email, 451)]
    assert len(handler.mails_to(person.email)) == 1
    events = await all_events(redis, settings)
    retries = [e for e in events if isinstance(e, TaskFailed) and e.aggregate_id == task.aggregate_id]
    assert [(e.error_type, e.retry_count, e.retry_at is not None) for e in retries] == [
        ("SmtpTemporaryFailure", 1, True),
        ("SmtpTemporaryFailure", 2, True),
    ]
    assert "451" in retries[0].error
    assert (await ledger_of(redis, settings, campaign_id))[recipient_id(campaign_id, person.email)] == "sent"


async def test_a_451_that_outlives_its_retries_leaves_the_recipient_failed(
    redis: Redis, settings: Settings, smtp: tuple[RecordingHandler, int]
) -> None:
    handler, port = smtp
    person = Recipient("always-grey@example.com")
    handler.temporary[person.email] = 100
    campaign_id = await seed_campaign(redis, settings, [person])
    await start_sending(redis, settings, campaign_id, [person], max_retries=1)
    with services() as running:
        start(running, "worker", env=_env(settings, port))
        start(running, "coordinator", env=_env(settings, port))  # it dispatches the retries it holds
        await eventually(lambda: _all_final(redis, settings, campaign_id), timeout_s=60)
    assert (await ledger_of(redis, settings, campaign_id))[recipient_id(campaign_id, person.email)] == "failed"
    (failed,) = [e for e in await all_events(redis, settings) if isinstance(e, RecipientFailed)]
    assert failed.smtp_code == 451 and not failed.bounced
    assert (await counters_of(redis, settings, campaign_id))["status"] == "completed"


async def test_the_rate_limit_holds_across_two_workers(
    redis: Redis, settings: Settings, smtp: tuple[RecordingHandler, int]
) -> None:
    handler, port = smtp
    people = [Recipient(f"r{i}@example.com") for i in range(10)]
    campaign_id = await seed_campaign(redis, settings, people, rate_limit_per_minute=120)  # one per 500 ms
    await start_sending(redis, settings, campaign_id, people)
    with services() as running:
        start(running, "worker", "--concurrency", "5", env=_env(settings, port))
        start(running, "worker", "--concurrency", "5", env=_env(settings, port))
        await eventually(lambda: _all_final(redis, settings, campaign_id), timeout_s=60)
    times = sorted(mail.at for mail in handler.received)
    assert len(times) == 10
    # Nine gaps of 500 ms: each slot is reserved once across both workers (a little
    # slack for the time between the slot and the server's acceptance).
    assert times[-1] - times[0] >= 4.3
    assert all(b - a >= 0.3 for a, b in itertools.pairwise(times))


async def test_a_paused_campaign_sends_nothing_until_it_runs_again(
    redis: Redis, settings: Settings, smtp: tuple[RecordingHandler, int]
) -> None:
    handler, port = smtp
    people = [Recipient(f"p{i}@example.com") for i in range(3)]
    campaign_id = await seed_campaign(redis, settings, people, status="paused")
    tasks = await start_sending(redis, settings, campaign_id, people, max_retries=0)
    with services() as running:
        start(running, "worker", env=_env(settings, port))
        start(running, "coordinator", env=_env(settings, port))  # it dispatches the retries it holds

        async def postponed() -> int:
            events = await all_events(redis, settings)
            return sum(isinstance(e, TaskFailed) and e.error_type == "Postponed" for e in events)

        await eventually(lambda: _at_least(postponed, 6), timeout_s=30)  # each task looked twice
        assert handler.received == []
        await redis.hset(Keyspace.of(settings).campaign(campaign_id), "status", "running")
        await eventually(lambda: _all_final(redis, settings, campaign_id), timeout_s=30)
    assert len(handler.received) == 3
    events = await all_events(redis, settings)
    # Waiting used up no retry: max_retries=0, and every task still succeeded.
    assert {e.retry_count for e in events if isinstance(e, TaskFailed)} == {0}
    assert {_results(events)[t.aggregate_id]["status"] for t in tasks} == {"SENT"}


async def _at_least(probe: object, n: int) -> bool:
    return await probe() >= n  # type: ignore[operator]


async def test_a_suppressed_address_is_skipped_by_a_later_campaign_of_the_same_owner(
    redis: Redis, settings: Settings, smtp: tuple[RecordingHandler, int]
) -> None:
    handler, port = smtp
    gone, stays = Recipient("Gone@Example.com"), Recipient("stays@example.com")
    await redis.sadd(Keyspace.of(settings).suppressed("alice"), "gone@example.com")
    campaign_id = await seed_campaign(redis, settings, [gone, stays], owner="alice")
    other_owner = await seed_campaign(redis, settings, [gone], owner="bob")
    await start_sending(redis, settings, campaign_id, [gone, stays])
    await start_sending(redis, settings, other_owner, [gone])
    with services() as running:
        start(running, "worker", env=_env(settings, port))
        start(running, "coordinator", env=_env(settings, port))  # it dispatches the retries it holds
        await eventually(lambda: _all_final(redis, settings, campaign_id), timeout_s=60)
        await eventually(lambda: _all_final(redis, settings, other_owner), timeout_s=60)
    assert (await ledger_of(redis, settings, campaign_id))[recipient_id(campaign_id, gone.email)] == "skipped"
    (skipped,) = [e for e in await all_events(redis, settings) if isinstance(e, RecipientSkipped)]
    assert skipped.reason == "suppressed" and skipped.aggregate_id == campaign_id
    assert [m.rcpt_tos for m in handler.received if gone.email in m.rcpt_tos] == [[gone.email]]  # bob's
    assert (await counters_of(redis, settings, campaign_id))["skipped"] == "1"


async def test_a_header_injection_never_reaches_the_wire(
    redis: Redis, settings: Settings, smtp: tuple[RecordingHandler, int]
) -> None:
    handler, port = smtp
    evil = Recipient("victim@example.com", "x\r\nBcc: evil@x")
    evil_fields = Recipient("other@example.com", "Other", {"code": "x"})
    template = {"subject": "Hi {{ name }}", "body": "<p>hi</p>", "text": None, "variables": {}}
    campaign_id = await seed_campaign(redis, settings, [evil, evil_fields], template=template)
    await start_sending(redis, settings, campaign_id, [evil, evil_fields])
    with services() as running:
        start(running, "worker", env=_env(settings, port))
        start(running, "coordinator", env=_env(settings, port))  # it dispatches the retries it holds
        await eventually(lambda: _all_final(redis, settings, campaign_id), timeout_s=60)
    assert handler.mails_to(evil.email) == []
    assert all(b"evil@x" not in m.data for m in handler.received)
    assert len(handler.mails_to(evil_fields.email)) == 1
    (failed,) = [e for e in await all_events(redis, settings) if isinstance(e, RecipientFailed)]
    assert "line break" in failed.error and not failed.bounced


async def test_sigkill_of_a_sending_worker_leaves_no_recipient_stuck_and_duplicates_share_a_message_id(
    redis: Redis, settings: Settings, smtp: tuple[RecordingHandler, int]
) -> None:
    handler, port = smtp
    people = [Recipient(f"k{i}@example.com") for i in range(20)]
    campaign_id = await seed_campaign(redis, settings, people, rate_limit_per_minute=600)  # 100 ms apart
    await start_sending(redis, settings, campaign_id, people)
    env = _env(settings, port)
    with services() as running:
        victim = start(running, "worker", "--concurrency", "5", env=env)
        await eventually(lambda: asyncio.sleep(0, len(handler.received) >= 5), timeout_s=60)
        victim.kill()
        start(running, "worker", "--concurrency", "5", env=env)
        await eventually(lambda: _all_final(redis, settings, campaign_id), timeout_s=90)
    ledger = await ledger_of(redis, settings, campaign_id)
    assert set(ledger.values()) == {"sent"}
    by_address: dict[str, set[str]] = defaultdict(set)
    for mail in handler.received:
        by_address[mail.rcpt_tos[0]].add(mail.message["Message-ID"])
    assert sorted(by_address) == sorted(p.email for p in people)
    assert all(len(ids) == 1 for ids in by_address.values())  # a duplicate, if any, is the same mail
    counters = await counters_of(redis, settings, campaign_id)
    assert (counters["status"], counters["pending"], counters["sent"]) == ("completed", "0", "20")


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_starttls_and_login_are_used_when_configured(
    redis: Redis, settings: Settings, certificate: tuple[Path, Path]
) -> None:
    """A server that refuses mail before STARTTLS and AUTH (aiosmtpd with a self-signed
    certificate the worker trusts through SSL_CERT_FILE): the mail goes through, after TLS
    and a login with the configured user."""
    cert, key = certificate
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    logins: list[tuple[str, bool]] = []

    def authenticator(
        server: object, session: object, envelope: object, mechanism: str, auth_data: object
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"mailer", b"s3cret")
        logins.append((mechanism, ok))
        return AuthResult(success=ok)

    handler = RecordingHandler()
    port = free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        tls_context=tls,
        require_starttls=True,
        auth_required=True,
        authenticator=authenticator,
    )
    controller.start()
    try:
        people = [Recipient("tls@example.com", "Tee")]
        campaign_id = await seed_campaign(redis, settings, people)
        await start_sending(redis, settings, campaign_id, people)
        env = {
            **_env(settings, port),
            "TASKFLOW_SMTP_STARTTLS": "true",
            "TASKFLOW_SMTP_USERNAME": "mailer",
            "TASKFLOW_SMTP_PASSWORD": "s3cret",
            "SSL_CERT_FILE": str(cert),
        }
        with services() as running:
            start(running, "worker", env=env)
            await eventually(lambda: _all_final(redis, settings, campaign_id), timeout_s=30)
    finally:
        controller.stop()
    assert set((await ledger_of(redis, settings, campaign_id)).values()) == {"sent"}
    (mail,) = handler.mails_to("tls@example.com")
    assert mail.message["Subject"] == "Hello Tee"
    assert logins and all(ok for _, ok in logins)


@pytest.mark.parametrize(
    ("told_slot_ms", "expected_s"),
    [
        (10_001, 2.001),  # a slot just past the longest wait: soon, with the margin
        (30_000, 22.0),  # when the slot is within the longest wait, less the margin
        (610_000, 602.0),
    ],
)
def test_a_task_far_from_a_rate_slot_comes_back_when_its_slot_is_near(told_slot_ms: int, expected_s: float) -> None:
    assert postponement_s(told_slot_ms) == pytest.approx(expected_s)
