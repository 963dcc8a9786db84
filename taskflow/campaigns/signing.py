"""DKIM signatures of campaign mail (dkimpy), when TASKFLOW_DKIM_* are set.

Covers what mailbox providers check for bulk mail: From, To, Subject, Date, Message-ID and
both List-Unsubscribe headers (RFC 8058 section 4 asks for the latter two to be signed,
else a relay could point the one-click POST elsewhere).
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from taskflow.errors import ConfigurationError
from taskflow.settings import Settings

SIGNED_HEADERS = (b"from", b"to", b"subject", b"date", b"message-id", b"list-unsubscribe", b"list-unsubscribe-post")


class DkimKey(msgspec.Struct, frozen=True):
    selector: str
    domain: str
    private_key: bytes


def dkim_key_of(settings: Settings) -> DkimKey | None:
    """The key from the settings, read once at start; None when signing is off."""
    if not settings.dkim_private_key_path:
        return None
    try:
        private_key = Path(settings.dkim_private_key_path).read_bytes()
    except OSError as e:
        raise ConfigurationError("TASKFLOW_DKIM_PRIVATE_KEY_PATH", f"cannot read the key ({e})") from e
    return DkimKey(settings.dkim_selector, settings.dkim_domain, private_key)


def sign(message: bytes, key: DkimKey) -> bytes:
    """The message with its ``DKIM-Signature`` header in front (relaxed/relaxed)."""
    # Loaded on the first signature: dkimpy brings its DNS library (65 ms), which a
    # worker without a DKIM key never needs, and the first mail of a campaign waited for.
    import dkim

    signature: bytes = dkim.sign(
        message,
        key.selector.encode(),
        key.domain.encode(),
        key.private_key,
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=list(SIGNED_HEADERS),
    )
    return signature + message
