"""Who may read ``/metrics``: the cluster's Prometheus, not whoever reaches the public port.

Every process serves ``/metrics`` on its one listener, and the gateway's listener is the public
one: its counters name routes, principals' kinds, failure rates and consumer lag, which tells an
attacker what is being used and when. Rather than a second listener (one more port per pod, one
more thing for the manifests), each process answers ``/metrics`` only to

- a client address in ``<PREFIX>_METRICS_ALLOWED_NETWORKS`` (default loopback and the private
  ranges a cluster scrapes from), resolved with the same trusted-proxy rule as the gateway's
  limits (clientaddr.py): an internet client behind a trusted ingress is its own address, not
  the ingress's;
- or a request with ``Authorization: Bearer <PREFIX>_METRICS_TOKEN`` when one is configured.

A request that came through a proxy the process does not trust (it carries ``X-Forwarded-For``,
``Forwarded`` or ``X-Real-IP`` from a peer outside ``<PREFIX>_TRUSTED_PROXIES``) is refused
whatever the peer's address: the peer is then an ingress in the private range, and the client
behind it is unknown. A scraper connects directly and sends none of those headers. Everyone else
gets the 404 an absent route gets, so the route's existence is not confirmed either.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from starlette.requests import Request

from .clientaddr import Network, client_address, in_networks, parse_networks
from .settings import ServiceSettings

_PROXY_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


@dataclass(frozen=True)
class MetricsAccess:
    allowed: tuple[Network, ...]
    trusted_proxies: tuple[Network, ...]
    token: bytes  # empty: no token opens the route

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> MetricsAccess:
        """Parsed once at start-up: a malformed block is a configuration error then, not a 500 later."""
        return cls(parse_networks(settings.metrics_allowed_networks), parse_networks(settings.trusted_proxies),
                   settings.metrics_token.get_secret_value().encode())

    def allows(self, request: Request) -> bool:
        if self.token and self._has_token(request.headers.get("authorization", "")):
            return True
        peer = request.client.host if request.client else None
        proxied = any(name in request.headers for name in _PROXY_HEADERS)
        if proxied and not in_networks(peer, self.trusted_proxies):
            return False
        forwarded_for = request.headers.get("x-forwarded-for")
        if proxied and not forwarded_for:
            return False  # a trusted proxy that did not say who the client is
        return in_networks(client_address(peer, forwarded_for, self.trusted_proxies), self.allowed)

    def _has_token(self, authorization: str) -> bool:
        scheme, _, value = authorization.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), self.token)
