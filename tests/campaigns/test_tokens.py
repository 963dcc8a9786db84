"""Unsubscribe tokens: ours read back, anything else refused the same way."""

from __future__ import annotations

import pytest

from taskflow.campaigns.ids import recipient_id
from taskflow.campaigns.unsubscribe import make_token, read_token, unsubscribe_key

KEY = unsubscribe_key("s" * 40)
TOKEN = make_token(KEY, "c1", " Zoe@Example.com ")


def test_a_token_names_its_campaign_and_normalised_address() -> None:
    target = read_token(KEY, TOKEN)
    assert target is not None
    assert (target.campaign_id, target.email) == ("c1", "zoe@example.com")
    assert target.recipient_id == recipient_id("c1", "zoe@example.com")


def _flipped(token: str, at: int) -> str:
    return token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1 :]


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "a.b.c",
        TOKEN.replace(".", ""),
        _flipped(TOKEN, 3),  # payload tampered
        _flipped(TOKEN, len(TOKEN) - 2),  # MAC tampered
        make_token(unsubscribe_key("other" * 8), "c1", "zoe@example.com"),  # another key
        make_token(KEY, "c1", "zoe@example.com").split(".")[0] + ".",
        "é." + TOKEN.split(".")[1],
        "x" * 5000,
    ],
)
def test_anything_but_our_token_is_refused(token: str) -> None:
    assert read_token(KEY, token) is None


def test_the_unsubscribe_key_is_not_the_jwt_secret() -> None:
    assert ("s" * 40).encode() != KEY
