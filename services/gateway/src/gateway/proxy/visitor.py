"""The one route a chat visitor calls: ``GET /v1/chat/conversations/{conversation_id}/messages``.

A visitor has no user account and no API key, only the visitor token ticket-svc minted for its
conversation (ticket_svc/visitor/tokens.py). The gateway holds no key to verify it and keeps no
business logic, so here it only:

- takes the token from ``Authorization: Bearer`` (nothing else is read as a credential here,
  and this route takes nothing else: a user token or an API key is just a token ticket-svc
  will refuse);
- limits: refused at once while the client address is locked out for bad credentials (the
  same per-address bucket as every route; ticket-svc's 401/403 answers count into it, so
  token guessing is as slow as key guessing), then per address and per token;
- forwards to ticket-svc with the token and a signed identity of kind ``visitor`` (id: a
  digest of the token, so no service ever logs the token itself as an id), which every other
  route of every service refuses (helpdesk_common.identity.current_principal);
- gives the long-poll its time: the upstream timeout is the request's ``wait`` plus the usual,
  on a connection pool of its own (``GATEWAY_VISITOR_MAX_CONNECTIONS``), so parked visitors never
  take the connections every other forwarded request needs; past that many in flight a visitor
  is told 503 with ``Retry-After`` at once instead of queueing.

Every other method and path stays with the ordinary proxy and its authentication.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections.abc import AsyncIterator

import aiohttp
from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response

from helpdesk_common.problems import Problem

from helpdesk_common.identity import Principal

from ..auth.service import AUTH_FAILURES, rate_limited, unauthorized
from ..deps import client_address_of
from ..ratelimit import TokenBuckets
from .forwarding import forward, new_session

PATH = "/v1/chat/conversations/{conversation_id}/messages"
#: the longest long-poll ticket-svc takes (its ``wait`` bound)
MAX_WAIT_S = 25.0
MAX_TOKEN_LENGTH = 512

router = APIRouter(include_in_schema=False)


class VisitorLimits:
    """Per-address and per-token request buckets of this route and its requests in flight (per
    gateway replica)."""

    def __init__(self, settings) -> None:  # type: ignore[no-untyped-def]
        on = settings.rate_limit_rps > 0  # 0 turns every request limit off (benchmarks)
        self.by_token = TokenBuckets(settings.visitor_rate_limit_rps if on else 0.0, settings.visitor_rate_limit_burst)
        self.by_address = TokenBuckets(settings.visitor_address_rate_limit_rps if on else 0.0,
                                       settings.visitor_address_rate_limit_burst)
        self.max_in_flight = max(1, settings.visitor_max_connections)
        self.in_flight = 0


def visitor_resources(settings):  # type: ignore[no-untyped-def]
    """The route's limits and its own upstream connection pool (``app.state.visitor_*``)."""

    @contextlib.asynccontextmanager
    async def hook(app: FastAPI) -> AsyncIterator[None]:
        app.state.visitor_limits = VisitorLimits(settings)
        app.state.visitor_http = new_session(max_connections=settings.visitor_max_connections,
                                             timeout_s=settings.upstream_timeout_s + MAX_WAIT_S)
        try:
            yield
        finally:
            await app.state.visitor_http.close()

    return hook


def _wait_of(request: Request) -> float:
    """The ``wait`` asked for, clamped; ticket-svc validates it (a bad one is its 422)."""
    try:
        wait = float(request.query_params.get("wait") or 0)
    except ValueError:
        return 0.0
    return min(max(wait, 0.0), MAX_WAIT_S) if math.isfinite(wait) else 0.0


@router.get(PATH, name="visitor-messages")
async def visitor_messages(request: Request, conversation_id: str) -> Response:
    state = request.app.state
    auth = state.auth
    address = client_address_of(request)
    if wait := auth.failures_by_address.peek(address):
        raise rate_limited(wait)
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_LENGTH:
        auth.failures_by_address.take(address)
        AUTH_FAILURES.inc()
        raise unauthorized("Use 'Authorization: Bearer <visitor token>'.")
    limits: VisitorLimits = state.visitor_limits
    digest = hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()[:32]
    if wait := limits.by_address.take(address) or limits.by_token.take(digest):
        raise rate_limited(wait)
    if limits.in_flight >= limits.max_in_flight:
        raise Problem(503, "busy", "Busy", "Too many visitors are waiting; retry in a moment.",
                      headers={"Retry-After": "2"})
    principal = Principal(kind="visitor", id=digest)
    settings = state.settings
    timeout = aiohttp.ClientTimeout(total=settings.upstream_timeout_s + _wait_of(request), connect=2)
    limits.in_flight += 1
    try:
        response = await forward(request, upstream=settings.ticket_url, service_name="ticket service",
                                 principal=principal, session=state.visitor_http, signer=state.signer,
                                 extra_headers={"authorization": f"Bearer {token}"}, timeout=timeout)
    finally:
        limits.in_flight -= 1
    if response.status_code in (401, 403):  # a wrong, forged or expired token, or another conversation's
        auth.failures_by_address.take(address)
        AUTH_FAILURES.inc()
    return response
