"""Campaign templates: refusals at creation, and the rendered message (pure)."""

from __future__ import annotations

import pytest

from taskflow.campaigns.templates import (
    CampaignTemplate,
    RenderError,
    TemplateRefused,
    html_to_text,
    refuse_unsafe,
    render,
)
from taskflow.events.campaign import CampaignRecipient

ANN = CampaignRecipient(recipient_id="r1", email="ann@example.com", name="Ann", fields={"city": "Paris"})
BOB = CampaignRecipient(recipient_id="r2", email="bob@example.com", name="Bob", fields={"city": "Rome", "vip": "yes"})
SAFE = CampaignTemplate(subject="Hi {{ name }}", body="<p>{{ city }}</p>")


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("{{ ''.__class__.__mro__ }}", "internals"),
        ("{{ x.mro() }}", "internals"),
        ("{% for i in range(10**9) %}x{% endfor %}", "rendering"),
        ("{{ 'x' * 10**8 }}", "repetition"),
        ("{{ 'x'|center(10**9) }}", "number argument"),
        ("{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}", "loop steps"),
        ("{% for i in range(99999) %}{{ 'y' * 999 }}{% endfor %}", "output larger"),
        ("{{ nope }}", "uses nope"),
        ("{{ vip }}", "uses vip"),  # Bob has it, Ann does not
        ("{% if %}", "syntax error"),
    ],
)
def test_an_unsafe_or_unknown_template_is_refused_naming_the_field(body: str, says: str) -> None:
    with pytest.raises(TemplateRefused) as refused:
        refuse_unsafe(CampaignTemplate(subject="s", body=body), [ANN, BOB])
    assert refused.value.field == "template_body" and says in refused.value.message


def test_campaign_variables_and_every_recipients_fields_are_known() -> None:
    refuse_unsafe(
        CampaignTemplate(subject="{{ brand }}: {{ city }}", body="<p>{{ email }}</p>", variables={"brand": "B"}),
        [ANN, BOB],
    )


def test_the_subject_and_the_text_part_are_named_when_they_are_refused() -> None:
    with pytest.raises(TemplateRefused) as refused:
        refuse_unsafe(CampaignTemplate(subject="{{ nope }}", body="b"), [ANN])
    assert refused.value.field == "template_subject"
    with pytest.raises(TemplateRefused) as refused:
        refuse_unsafe(CampaignTemplate(subject="s", body="b", text="{{ ''.__class__ }}"), [ANN])
    assert refused.value.field == "template_text"


def test_render_personalises_escapes_the_html_keeps_the_subject_on_one_line_and_makes_a_text_part() -> None:
    template = CampaignTemplate(
        subject="Hi {{ name }} {{ city }}",
        body='<p>Hello <b>{{ name }}</b></p><p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>',
    )
    evil = CampaignRecipient(recipient_id="r", email="e@example.com", name="<i>Eve</i>", fields={"city": "X\r\nBcc: y"})
    message = render(template, evil, "https://t.example/u/1")
    assert message.subject == "Hi <i>Eve</i> X Bcc: y"
    assert "&lt;i&gt;Eve&lt;/i&gt;" in message.html
    assert message.text == "Hello <i>Eve</i>\n\nUnsubscribe (https://t.example/u/1)"


def test_a_given_text_template_is_rendered_instead_of_the_generated_one() -> None:
    message = render(CampaignTemplate(subject="s", body="<p>x</p>", text="Hi {{ name }} <b>"), ANN, "u")
    assert message.text == "Hi Ann <b>"


def test_a_render_error_names_the_part() -> None:
    with pytest.raises(RenderError) as error:
        render(
            CampaignTemplate(subject="s", body="{{ city }}"), CampaignRecipient(recipient_id="r", email="e@x.io"), "u"
        )
    assert error.value.part == "html"


def test_html_to_text_drops_scripts_and_keeps_lists() -> None:
    assert html_to_text("<style>p{}</style><ul><li>a</li><li>b</li></ul>x<br>y") == "- a\n\n- b\n\nx\ny"
