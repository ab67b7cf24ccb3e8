from collections.abc import Callable
from typing import Annotated, Any

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


async def authenticated_scope(scope: Any, header: Callable[[str], str | None], path: str) -> Principal:
    """``authenticated`` for a route that answers in plain ASGI (proxy/endpoints.py): the same
    checks from the request's scope, ``header`` (by lower-case name) and ``path`` (as
    ``Request.url.path``)."""
    auth = scope["app"].state.auth
    client = scope.get("client")
    address = client_address(client[0] if client else None, header("x-forwarded-for"), auth.trusted_proxies)
    return await auth.authenticate(header("authorization"), address, path)


@authenticates
async def admin(request: Request) -> Principal:
    principal = await authenticated(request)
    require_user(principal, "admin")
    return principal


Caller = Annotated[Principal, Depends(authenticated)]
Admin = Annotated[Principal, Depends(admin)]
ClientAddress = Annotated[str, Depends(client_address_of)]
