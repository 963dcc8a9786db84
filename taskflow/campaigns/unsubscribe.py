"""Unsubscribe tokens: the credential of ``/unsubscribe/{token}`` (no login, no cookie).

A token is ``base64url(JSON [campaign id, normalised address]) "." base64url(MAC)``, the
MAC an HMAC-SHA256 (cut to 128 bits) under a key of its own, derived from
``TASKFLOW_JWT_SECRET``: a leaked unsubscribe key signs no JWT, and a JWT is no token
here. The recipient id is derived from the pair (``ids.recipient_id``), so nobody can
name another recipient without the key, and the address needs no lookup.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

import msgspec

from taskflow.campaigns.ids import normalised, recipient_id

_KEY_LABEL = b"taskflow unsubscribe v1"
_MAC_BYTES = 16
# Longer is not ours: refused before any decoding work (an address is at most 254 bytes).
MAX_TOKEN_CHARS = 600


class UnsubscribeTarget(msgspec.Struct, frozen=True):
    campaign_id: str
    email: str

    @property
    def recipient_id(self) -> str:
        return recipient_id(self.campaign_id, self.email)


def unsubscribe_key(jwt_secret: str) -> bytes:
    return hmac.new(jwt_secret.encode(), _KEY_LABEL, hashlib.sha256).digest()


def make_token(key: bytes, campaign_id: str, email: str) -> str:
    payload = msgspec.json.encode([campaign_id, normalised(email)])
    return f"{_b64(payload)}.{_b64(_mac(key, payload))}"


def read_token(key: bytes, token: str) -> UnsubscribeTarget | None:
    """The target of a token we signed, or None for anything else (malformed, tampered,
    forged: one answer, so a caller learns nothing from which)."""
    if len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        return None
    encoded_payload, encoded_mac = token.split(".")
    try:
        payload, mac = _unb64(encoded_payload), _unb64(encoded_mac)
    except (binascii.Error, ValueError):
        return None
    # Constant time: a forger learns nothing from how long a wrong MAC took to refuse.
    if not hmac.compare_digest(mac, _mac(key, payload)):
        return None
    try:
        campaign_id, email = msgspec.json.decode(payload, type=tuple[str, str])
    except msgspec.DecodeError:
        return None
    return UnsubscribeTarget(campaign_id, email)


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()[:_MAC_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text.isascii():
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
