"""Where a request comes from: the peer's address, unless the peer is a configured proxy
(``TASKFLOW_TRUSTED_PROXIES``); then the rightmost ``X-Forwarded-For`` address that is
not a proxy, so a client cannot choose its own address by sending the header itself."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable


class TrustedProxies:
    """The proxies whose ``X-Forwarded-For`` is believed (addresses or CIDR blocks)."""

    def __init__(self, blocks: Iterable[str] = ()) -> None:
        self._networks = tuple(ipaddress.ip_network(block, strict=False) for block in blocks)

    def __contains__(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._networks)


def client_address(peer: str | None, forwarded_for: str | None, proxies: TrustedProxies) -> str:
    if peer is None:
        return "unknown"
    if not forwarded_for or peer not in proxies:
        return peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if hop not in proxies:
            return hop if _is_address(hop) else peer
    return peer


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
