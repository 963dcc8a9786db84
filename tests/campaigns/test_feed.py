"""The campaign feed (SSE) through a real gateway process: its owner (and admins) see the
campaign's events from its creation; anyone else gets 404."""

from __future__ import annotations

import httpx
from redis.asyncio import Redis

from taskflow.settings import Settings
from tests.gateway.test_feeds import _auth, _ready, feed, gateway


async def test_the_owner_follows_a_campaign_from_its_creation_others_get_404(settings: Settings, redis: Redis) -> None:
    alice = _auth(settings, "alice")
    with gateway(settings) as (base, _):
        await _ready(base)
        async with httpx.AsyncClient(base_url=base) as http:
            created = await http.post(
                "/api/v1/campaigns",
                json={
                    "name": "Spring",
                    "template_subject": "Hi {{ name }}",
                    "template_body": "<p>Hello {{ name }}</p>",
                    "recipients": [{"email": "ann@example.com", "name": "Ann"}, {"email": "bo@example.com"}],
                },
                headers=alice,
            )
            assert created.status_code == 201, created.text
            campaign_id = created.json()["campaign_id"]
            path = f"/api/v1/campaigns/{campaign_id}/stream"
            other = await http.get(path, headers=_auth(settings, "bob"))
            assert other.status_code == 404
            async with feed(base, path, {**alice, "Last-Event-ID": "0-0"}) as mine:
                history = await mine.events(2)
                assert [m.event for m in history] == ["campaign.created", "campaign.recipients_added"]
                assert history[0].json["name"] == "Spring"
                started = await http.post(f"/api/v1/campaigns/{campaign_id}/start", headers=alice)
                assert started.status_code == 202, started.text
                live = await mine.events(2)
                assert [m.event for m in live] == ["campaign.started", "operator.acted"]
                assert live[0].json["send_tasks"] == 2
