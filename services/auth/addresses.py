"""The client address a login is counted against.

The peer address of the connection, unless that peer is a proxy we trust
(``BACKBONE_TRUSTED_PROXIES``): then the nearest address in ``X-Forwarded-For`` that is not
itself a trusted proxy. Without trusted proxies the header is ignored, so a client cannot
pick the address its failures are counted against.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection

UNKNOWN = "unknown"


def _normal(address: str) -> str | None:
    try:
        return str(ipaddress.ip_address(address.strip()))
    except ValueError:
        return None


def client_address(
    peer: str | None, forwarded_for: str | None, trusted_proxies: Collection[str]
) -> str:
    """The address to count a login against (canonical text form of an IP address)."""
    address = _normal(peer) if peer else None
    if address is None:
        return UNKNOWN if not peer else peer[:100]
    trusted = {t for t in (_normal(p) for p in trusted_proxies) if t is not None}
    if address not in trusted or not forwarded_for:
        return address
    for hop in reversed(forwarded_for.split(",")):
        hop_address = _normal(hop)
        if hop_address is None:
            return address  # a malformed header: count against the proxy itself
        if hop_address not in trusted:
            return hop_address
    return address
