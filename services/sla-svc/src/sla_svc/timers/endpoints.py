from __future__ import annotations

import uuid

from fastapi import APIRouter, Request

from helpdesk_common.app import runtime_of
from helpdesk_common.identity import CurrentPrincipal, require_user
from helpdesk_common.responses import JSONBytesResponse

from . import policies, repository

router = APIRouter(prefix="/v1/sla", tags=["sla"])


@router.get("/tickets/{ticket_id}/timers", summary="A ticket's SLA timers")
async def ticket_timers(request: Request, ticket_id: uuid.UUID, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).engine.connect() as conn:
        rows = await repository.timers_of(conn, ticket_id)
    items = [
        {"metric": r.metric, "policy": r.policy, "target_minutes": r.target_minutes,
         "started_at": r.started_at, "due_at": r.due_at, "status": r.status}
        for r in rows
    ]
    return JSONBytesResponse({"items": items})


@router.get("/policies/default", summary="The default first-response targets by priority")
async def default_policy(principal: CurrentPrincipal) -> dict:
    require_user(principal)
    return {"name": policies.DEFAULT_POLICY, "first_response_minutes": policies.FIRST_RESPONSE_MINUTES,
            "calendar": "24x7"}
