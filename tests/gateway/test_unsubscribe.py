"""``/unsubscribe/{token}``: one-click POST (RFC 8058) and a confirmation page, no login;
forged tokens refused alike; the address joins the owner's suppression list."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from taskflow.campaigns.ids import recipient_id
from taskflow.campaigns.unsubscribe import make_token, unsubscribe_key
from taskflow.events import RecipientUnsubscribed
from taskflow.gateway.app import create_app
from taskflow.settings import Settings
from taskflow.streams.keyspace import Keyspace
from tests.support.campaigns import Recipient, counters_of, ledger_of, seed_campaign
from tests.support.stack import all_events

Client = AsyncTestClient[Any]
ZOE = Recipient("Zoe@Example.com", "Zoe")
ONE_CLICK = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


def _token(settings: Settings, campaign_id: str, email: str = ZOE.email) -> str:
    return make_token(unsubscribe_key(settings.jwt_secret), campaign_id, email)


async def test_one_click_post_unsubscribes_at_once_without_a_login_or_a_redirect(
    client: Client, redis: Redis, settings: Settings
) -> None:
    campaign_id = await seed_campaign(redis, settings, [ZOE, Recipient("other@example.com")], owner="alice")
    started = time.monotonic()
    response = await client.post(
        f"/unsubscribe/{_token(settings, campaign_id)}", content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK
    )
    assert time.monotonic() - started < 1.0
    assert response.status_code == 200 and "unsubscribed" in response.text
    assert "location" not in response.headers and "set-cookie" not in response.headers
    rid = recipient_id(campaign_id, ZOE.email)
    assert (await ledger_of(redis, settings, campaign_id))[rid] == "unsubscribed"
    counters = await counters_of(redis, settings, campaign_id)
    assert (counters["pending"], counters["skipped"]) == ("1", "1")
    assert await redis.sismember(Keyspace.of(settings).suppressed("alice"), "zoe@example.com")
    (event,) = [e for e in await all_events(redis, settings) if isinstance(e, RecipientUnsubscribed)]
    assert (event.aggregate_id, event.recipient_id, event.email, event.via) == (
        campaign_id,
        rid,
        "zoe@example.com",
        "one-click",
    )


async def test_a_second_post_changes_nothing_and_says_the_same(
    client: Client, redis: Redis, settings: Settings
) -> None:
    campaign_id = await seed_campaign(redis, settings, [ZOE])
    url = f"/unsubscribe/{_token(settings, campaign_id)}"
    first, second = await client.post(url), await client.post(url)
    assert first.status_code == second.status_code == 200 and first.text == second.text
    assert sum(isinstance(e, RecipientUnsubscribed) for e in await all_events(redis, settings)) == 1


async def test_get_shows_a_confirmation_page_and_unsubscribes_no_one(
    client: Client, redis: Redis, settings: Settings
) -> None:
    """Link scanners prefetch GETs: only the page's button (a POST) unsubscribes."""
    campaign_id = await seed_campaign(redis, settings, [ZOE])
    token = _token(settings, campaign_id)
    page = await client.get(f"/unsubscribe/{token}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    # Posts to its own address (works under a path prefix too).
    assert 'action=""' in page.text and 'method="post"' in page.text
    assert (await ledger_of(redis, settings, campaign_id))[recipient_id(campaign_id, ZOE.email)] == "pending"
    pressed = await client.post(f"/unsubscribe/{token}", content=b"via=page", headers=ONE_CLICK)
    assert pressed.status_code == 200
    (event,) = [e for e in await all_events(redis, settings) if isinstance(e, RecipientUnsubscribed)]
    assert event.via == "page"


@pytest.mark.parametrize("method", ["get", "post"])
async def test_forged_tampered_and_unknown_tokens_get_one_same_answer(
    client: Client, redis: Redis, settings: Settings, method: str
) -> None:
    campaign_id = await seed_campaign(redis, settings, [ZOE])
    good = _token(settings, campaign_id)
    forged = make_token(unsubscribe_key("another secret of at least 32 bytes!"), campaign_id, ZOE.email)
    tampered = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    unknown_campaign = _token(settings, "no-such-campaign")
    answers = []
    for token in (forged, tampered, "not-a-token", unknown_campaign):
        response = await getattr(client, method)(f"/unsubscribe/{token}")
        answers.append((response.status_code, response.json()["detail"]))
    assert set(answers) == {(404, "no such unsubscribe link")}
    assert (await ledger_of(redis, settings, campaign_id))[recipient_id(campaign_id, ZOE.email)] == "pending"


async def test_a_token_for_an_address_outside_the_campaign_is_refused(
    client: Client, redis: Redis, settings: Settings
) -> None:
    campaign_id = await seed_campaign(redis, settings, [ZOE], owner="alice")
    response = await client.post(f"/unsubscribe/{_token(settings, campaign_id, 'stranger@example.com')}")
    assert response.status_code == 404
    assert not await redis.sismember(Keyspace.of(settings).suppressed("alice"), "stranger@example.com")
