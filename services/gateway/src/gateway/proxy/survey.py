"""The survey answer link: ``GET`` and ``POST /v1/surveys/{token}``, with no login.

A customer opens the link from a mail in whatever browser they have; the signed token in the
path is the only credential, and customer-svc alone holds the key that verifies it
(customer_svc/surveys/tokens.py). So, as for the chat visitor's route (proxy/visitor.py), the
gateway keeps no logic here and only:

- routes ``/v1/surveys/settings`` first, through the ordinary proxy with its authentication
  (it would otherwise match ``{token}``); every other path under ``/v1/surveys`` stays with the
  ordinary proxy too, while every method of the link goes to customer-svc as is (a method the
  link does not take is its 405 with ``Allow``, not a 401 asking for a login that would not help);
- limits per address and forwards to customer-svc with a ``visitor`` identity naming a digest
  of the token, as every capability link (proxy/links.py; customer-svc's 404 for a token that
  is not one counts as a bad credential).

The token is never logged: the gateway logs route templates, not paths.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from .endpoints import METHODS, add_proxy_route
from .links import address_limits, forward_link

PATH = "/v1/surveys/{token}"

router = APIRouter(include_in_schema=False)
# the settings are an admin's resource: authenticated, before the public route matches them
add_proxy_route(router, "/v1/surveys/settings", "customer_url", "customer service", name="proxy-survey-settings")


# every method: customer-svc answers the ones the link does not take with 405 and its Allow
@router.api_route(PATH, methods=METHODS, name="survey-answer")
async def survey_answer(request: Request, token: str) -> Response:
    settings = request.app.state.settings
    limits = address_limits(request, "survey_limits", settings.survey_address_rate_limit_rps,
                            settings.survey_address_rate_limit_burst)
    return await forward_link(request, token, upstream=settings.customer_url, service_name="customer service",
                              limits=limits)
