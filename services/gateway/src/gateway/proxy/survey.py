"""The survey answer link: ``GET`` and ``POST /v1/surveys/{token}``, with no login.

A customer opens the link from a mail in whatever browser they have; the signed token in the
path is the only credential, and customer-svc alone holds the key that verifies it
(customer_svc/surveys/tokens.py). So, as for the chat visitor's route (proxy/visitor.py), the
gateway keeps no logic here and only:

- routes ``/v1/surveys/settings`` first, through the ordinary proxy with its authentication
  (it would otherwise match ``{token}``); every other path under ``/v1/surveys`` stays with the
  ordinary proxy too, while every method of the link goes to customer-svc as is (a method the
  link does not take is its 405 with ``Allow``, not a 401 asking for a login that would not help);
- limits: refused at once while the client address is locked out for bad credentials (the
  same per-address bucket as every route; customer-svc's 404 for a token that is not one counts
  into it, so guessing tokens is as slow as guessing keys), then per address;
- forwards to customer-svc with a signed identity of kind ``visitor`` whose id is a digest of
  the token (every other route of every service refuses that kind), the body untouched (the
  page's form or JSON) and no caller credentials.

The token is never logged: the gateway logs route templates, not paths.
"""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, Request
from starlette.responses import Response

from helpdesk_common.identity import Principal

from ..auth.service import AUTH_FAILURES, rate_limited
from ..deps import client_address_of
from ..ratelimit import TokenBuckets
from .endpoints import METHODS, _handler
from .forwarding import forward

PATH = "/v1/surveys/{token}"

router = APIRouter(include_in_schema=False)
# the settings are an admin's resource: authenticated, before the public route matches them
router.add_api_route("/v1/surveys/settings", _handler("customer_url", "customer service"), methods=METHODS,
                     name="proxy-survey-settings")


def _limits(request: Request) -> TokenBuckets:
    state = request.app.state
    buckets = getattr(state, "survey_limits", None)
    if buckets is None:
        settings = state.settings
        on = settings.rate_limit_rps > 0  # 0 turns every request limit off (benchmarks)
        buckets = state.survey_limits = TokenBuckets(settings.survey_address_rate_limit_rps if on else 0.0,
                                                     settings.survey_address_rate_limit_burst)
    return buckets


# every method: customer-svc answers the ones the link does not take with 405 and its Allow
@router.api_route(PATH, methods=METHODS, name="survey-answer")
async def survey_answer(request: Request, token: str) -> Response:
    state = request.app.state
    auth = state.auth
    address = client_address_of(request)
    if wait := auth.failures_by_address.peek(address):
        raise rate_limited(wait)
    if wait := _limits(request).take(address):
        raise rate_limited(wait)
    digest = hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()[:32]
    response = await forward(request, upstream=state.settings.customer_url, service_name="customer service",
                             principal=Principal(kind="visitor", id=digest), session=state.http,
                             signer=state.signer)
    if response.status_code == 404:  # not a token customer-svc made: counts as a bad credential
        auth.failures_by_address.take(address)
        AUTH_FAILURES.inc()
    return response
