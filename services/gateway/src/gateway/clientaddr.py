"""The client's address, believing ``X-Forwarded-For`` only from configured proxies.

uvicorn's own proxy-header handling trusts 127.0.0.1 by default, so any local process (or a
sidecar) could pick the address every limit is keyed on. The services run uvicorn with
``--no-proxy-headers`` and the gateway decides here, from ``GATEWAY_TRUSTED_PROXIES``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(spec: str) -> tuple[Network, ...]:
    """``"10.0.0.0/8, 127.0.0.1"`` → networks; a bad entry is a configuration error."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip())


def _trusted(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The peer, unless it is a trusted proxy: then the right-most X-Forwarded-For entry that is
    not itself a trusted proxy (entries further left are whatever the client chose to send)."""
    address = peer or "unknown"
    if not trusted or not forwarded_for or not _trusted(address, trusted):
        return address
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return address  # a malformed chain: believe only the proxy that sent it
        if not _trusted(hop, trusted):
            return hop
        address = hop
    return address
