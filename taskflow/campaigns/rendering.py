"""One recipient's subject, HTML and text, from the campaign's stored template.

THE SEAM: ``render_for`` is the only call the send task makes. It renders here with a
minimal sandboxed Jinja2 environment; once ``taskflow.campaigns.templates.render`` (the
campaign-intake side: validation, preview, text from HTML) lands, ``render_for`` should
delegate to it and this module's own environment go, so a preview and a sent mail can
never differ.
"""

from __future__ import annotations

import html
import re

import msgspec
from jinja2.sandbox import SandboxedEnvironment

from taskflow.campaigns.message import Rendered


class StoredTemplate(msgspec.Struct, frozen=True):
    """The campaign hash's ``template`` field (the shared contract)."""

    subject: str
    body: str
    text: str | None = None
    variables: dict[str, str] = {}


class RecipientFields(msgspec.Struct, frozen=True):
    email: str
    name: str = ""
    fields: dict[str, str] = {}


# Sandboxed: templates are user input and must not reach Python internals. HTML is
# autoescaped (a recipient's field is text, never markup); subject and text are not.
_html = SandboxedEnvironment(autoescape=True)
_plain = SandboxedEnvironment(autoescape=False)
_decoder = msgspec.json.Decoder(StoredTemplate)
_TAG = re.compile(r"<[^>]+>")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def render_for(template_json: str | bytes, recipient: RecipientFields, unsubscribe_url: str) -> Rendered:
    template = _decoder.decode(template_json)
    context: dict[str, str] = {
        **template.variables,
        **recipient.fields,
        "name": recipient.name,
        "email": recipient.email,
        "unsubscribe_url": unsubscribe_url,
    }
    body = _html.from_string(template.body).render(context)
    text = _plain.from_string(template.text).render(context) if template.text is not None else _text_of(body)
    subject = _plain.from_string(template.subject).render(context)
    return Rendered(subject=subject, html=body, text=text)


def _text_of(body: str) -> str:
    """A plain rendering of the HTML, good enough for the text part: tags dropped."""
    return _BLANK_LINES.sub("\n\n", html.unescape(_TAG.sub("", body))).strip()
