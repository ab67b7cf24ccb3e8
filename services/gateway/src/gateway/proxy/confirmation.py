"""The customer-confirmation link: ``GET`` and ``POST /v1/confirmations/{token}``, with no login.

A customer asked "is your request resolved?" opens the link in whatever browser their mail or
chat app has; the signed token in the path is the only credential, and ticket-svc alone holds
the key that verifies it (ticket_svc/confirmations/tokens.py). As for the survey link
(proxy/survey.py), the gateway limits per address, counts ticket-svc's 404 as a bad credential
and forwards with a ``visitor`` identity naming a digest of the token (``links.forward_link``).
Every method goes to ticket-svc, which answers the ones the link does not take with 405.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from .endpoints import METHODS
from .links import address_limits, forward_link

PATH = "/v1/confirmations/{token}"

router = APIRouter(include_in_schema=False)


@router.api_route(PATH, methods=METHODS, name="confirmation-answer")
async def confirmation_answer(request: Request, token: str) -> Response:
    settings = request.app.state.settings
    limits = address_limits(request, "confirmation_limits", settings.confirmation_address_rate_limit_rps,
                            settings.confirmation_address_rate_limit_burst)
    return await forward_link(request, token, upstream=settings.ticket_url, service_name="ticket service",
                              limits=limits)
