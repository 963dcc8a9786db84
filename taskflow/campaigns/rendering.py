"""One recipient's subject, HTML and text, from the campaign's stored template: the one
call the send task makes, delegating to ``templates.render`` (the same code the preview
and the create-time checks run), so a preview and a sent mail never differ."""

from __future__ import annotations

import msgspec

from taskflow.campaigns.message import Rendered
from taskflow.campaigns.templates import CampaignTemplate, render
from taskflow.events import CampaignRecipient

_decoder = msgspec.json.Decoder(CampaignTemplate)


class RecipientFields(msgspec.Struct, frozen=True):
    email: str
    name: str = ""
    fields: dict[str, str] = {}


def render_for(template_json: str | bytes, recipient: RecipientFields, unsubscribe_url: str) -> Rendered:
    """Raises ``templates.RenderError`` when the template cannot render for this recipient."""
    template = _decoder.decode(template_json)
    message = render(
        template,
        CampaignRecipient(recipient_id="", email=recipient.email, name=recipient.name, fields=recipient.fields),
        unsubscribe_url,
    )
    return Rendered(subject=message.subject, html=message.html, text=message.text)
