from typing import Annotated

from fastapi import Depends, Request

from helpdesk_common.identity import Principal, require_user


async def authenticated(request: Request) -> Principal:
    return await request.app.state.auth.authenticate(request.headers.get("authorization"))


async def admin(request: Request) -> Principal:
    principal = await authenticated(request)
    require_user(principal, "admin")
    return principal


Caller = Annotated[Principal, Depends(authenticated)]
Admin = Annotated[Principal, Depends(admin)]
