"""Public capability links (a survey to answer, a resolution to confirm): the one way the
gateway forwards a request whose only credential is the signed token in its path.

The owning service alone holds the key that verifies such a token, so the gateway keeps no
logic here and only:

- refuses at once while the client address is locked out for bad credentials (the same
  per-address bucket as every route; the owner's 404 for a token that is not one counts into
  it, so guessing tokens is as slow as guessing keys), then limits per address;
- forwards with a signed identity of kind ``visitor`` whose id is a digest of the token (every
  other route of every service refuses that kind), the body untouched and no caller credentials.

The token is never logged: the gateway logs route templates, not paths.
"""

from __future__ import annotations

import hashlib

from starlette.requests import Request
from starlette.responses import Response

from helpdesk_common.identity import Principal

from ..auth.service import AUTH_FAILURES, rate_limited
from ..deps import client_address_of
from ..ratelimit import TokenBuckets
from .forwarding import forward


def address_limits(request: Request, name: str, rps: float, burst: int) -> TokenBuckets:
    """The per-address buckets of one kind of link, made on first use (``rate_limit_rps`` 0 turns
    every request limit off, for benchmarks)."""
    state = request.app.state
    buckets = getattr(state, name, None)
    if buckets is None:
        buckets = TokenBuckets(rps if state.settings.rate_limit_rps > 0 else 0.0, burst)
        setattr(state, name, buckets)
    return buckets


async def forward_link(request: Request, token: str, *, upstream: str, service_name: str,
                       limits: TokenBuckets) -> Response:
    state = request.app.state
    auth = state.auth
    address = client_address_of(request)
    if wait := auth.failures_by_address.peek(address):
        raise rate_limited(wait)
    if wait := limits.take(address):
        raise rate_limited(wait)
    digest = hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()[:32]
    response = await forward(request, upstream=upstream, service_name=service_name,
                             principal=Principal(kind="visitor", id=digest), session=state.http, signer=state.signer)
    if response.status_code == 404:  # not a token the owner made: counts as a bad credential
        auth.failures_by_address.take(address)
        AUTH_FAILURES.inc()
    return response
