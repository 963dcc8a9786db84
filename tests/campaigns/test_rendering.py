"""Rendering one recipient's mail from the stored template (the seam to templates.py)."""

from __future__ import annotations

import msgspec
import pytest

from taskflow.campaigns.rendering import RecipientFields, render_for
from taskflow.campaigns.templates import RenderError

URL = "https://x/unsubscribe/t"


def _template(**fields: object) -> bytes:
    base: dict[str, object] = {"subject": "Hi {{ name }}", "body": "<p>{{ greeting }} {{ name }}</p>", "variables": {}}
    base.update(fields)
    return msgspec.json.encode(base)


def test_recipient_fields_override_campaign_variables() -> None:
    rendered = render_for(
        _template(variables={"greeting": "Hello"}),
        RecipientFields("a@x.org", "Ann", {"greeting": "Howdy"}),
        URL,
    )
    assert rendered.subject == "Hi Ann"
    assert rendered.html == "<p>Howdy Ann</p>"
    assert rendered.text == "Howdy Ann"


def test_html_escapes_recipient_values_but_text_and_subject_do_not() -> None:
    rendered = render_for(
        _template(text="{{ name }}", variables={"greeting": "Hi"}), RecipientFields("a@x.org", "<b>Ann</b>"), URL
    )
    assert rendered.html == "<p>Hi &lt;b&gt;Ann&lt;/b&gt;</p>"
    assert rendered.text == "<b>Ann</b>" and rendered.subject == "Hi <b>Ann</b>"


def test_the_unsubscribe_url_is_available_to_templates() -> None:
    rendered = render_for(_template(body='<a href="{{ unsubscribe_url }}">x</a>'), RecipientFields("a@x.org"), URL)
    assert URL in rendered.html


def test_templates_cannot_reach_python_internals() -> None:
    with pytest.raises(RenderError, match="SecurityError"):
        render_for(_template(body="{{ ''.__class__.__mro__[1].__subclasses__() }}"), RecipientFields("a@x.org"), URL)
