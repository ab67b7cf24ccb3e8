"""The caller of a staff content route.

``helpdesk_common.identity.current_principal`` refuses roles outside the ticketing ones (an
editor is an agent nowhere); kb-svc is where editors work, so it verifies the gateway's signed
identity itself and keeps the rest of the rule: no identity is 401, a chat visitor 403. Which
role may do what is decided in ``service.require_reader`` / ``require_writer``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from helpdesk_common.identity import IDENTITY_HEADER, IdentityVerifier, Principal
from helpdesk_common.openapi import authenticates
from helpdesk_common.problems import Problem


@authenticates
async def kb_principal(request: Request) -> Principal:
    token = request.headers.get(IDENTITY_HEADER)
    if not token:
        raise Problem(401, "unauthorized", "Unauthorized", "Missing identity.")
    verifier: IdentityVerifier = request.app.state.identity_verifier
    principal = verifier.verify(token)
    if principal.kind == "visitor":
        raise Problem(403, "forbidden", "Forbidden", "This operation is not allowed for the caller.")
    return principal


KbPrincipal = Annotated[Principal, Depends(kb_principal)]
