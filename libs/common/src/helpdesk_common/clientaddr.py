"""The client's address, believing ``X-Forwarded-For`` only from configured proxies.

uvicorn's own proxy-header handling trusts 127.0.0.1 by default, so any local process (or a
sidecar) could pick the address every limit is keyed on. The services run uvicorn with
``--no-proxy-headers`` and decide here, from ``<PREFIX>_TRUSTED_PROXIES`` (the gateway's
``GATEWAY_TRUSTED_PROXIES``; the services sit behind no proxy and leave it empty). The gateway's
limits and every process's ``/metrics`` allow-list (metrics_access.py) use the same answer.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(spec: str) -> tuple[Network, ...]:
    """``"10.0.0.0/8, 127.0.0.1"`` → networks; a bad entry is a configuration error."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip())


def in_networks(address: str | None, networks: Sequence[Network]) -> bool:
    """Whether ``address`` (an IP literal; anything else is never in) is in one of ``networks``."""
    if address is None:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:  # ::ffff:10.1.2.3 on a dual-stack socket
        ip = ip.ipv4_mapped
    return any(ip in net for net in networks)


def client_address(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The peer, unless it is a trusted proxy: then the right-most X-Forwarded-For entry that is
    not itself a trusted proxy (entries further left are whatever the client chose to send)."""
    address = peer or "unknown"
    if not trusted or not forwarded_for or not in_networks(address, trusted):
        return address
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return address  # a malformed chain: believe only the proxy that sent it
        if not in_networks(hop, trusted):
            return hop
        address = hop
    return address
