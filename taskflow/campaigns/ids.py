"""Ids of a campaign's recipients and messages: derived, so the same address is one
recipient, and every attempt to mail a recipient carries the same Message-ID."""

from __future__ import annotations

from uuid import NAMESPACE_URL, uuid5

_SPACE = uuid5(NAMESPACE_URL, "https://taskflow.dev/campaigns")


def normalised(email: str) -> str:
    """The address as compared for duplicates and suppression: trimmed, domain in
    lower case (the local part is case-sensitive by RFC 5321, but compared case-blind
    here, as every mailbox provider does)."""
    return email.strip().lower()


def recipient_id(campaign_id: str, email: str) -> str:
    return str(uuid5(_SPACE, f"{campaign_id}:{normalised(email)}"))


def message_id(campaign_id: str, recipient_id: str, domain: str) -> str:
    """``<…@domain>``: one per (campaign, recipient), whatever the attempt, so a duplicate
    after a crash shares it and mailbox providers drop it."""
    return f"<{uuid5(_SPACE, f'message:{campaign_id}:{recipient_id}')}@{domain}>"
