from typing import Annotated

from fastapi import Depends, Request

from helpdesk_common.identity import Principal, require_user
from helpdesk_common.openapi import authenticates

from .clientaddr import client_address


def client_address_of(request: Request) -> str:
    """The address limits are keyed on (X-Forwarded-For only from GATEWAY_TRUSTED_PROXIES)."""
    peer = request.client.host if request.client else None
    return client_address(peer, request.headers.get("x-forwarded-for"), request.app.state.auth.trusted_proxies)


@authenticates
async def authenticated(request: Request) -> Principal:
    return await request.app.state.auth.authenticate(request.headers.get("authorization"), client_address_of(request),
                                                      request.url.path)


@authenticates
async def admin(request: Request) -> Principal:
    principal = await authenticated(request)
    require_user(principal, "admin")
    return principal


Caller = Annotated[Principal, Depends(authenticated)]
Admin = Annotated[Principal, Depends(admin)]
ClientAddress = Annotated[str, Depends(client_address_of)]
