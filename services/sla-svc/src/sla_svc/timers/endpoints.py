"""SLA reads for users (channels get 403)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request

from helpdesk_common.app import runtime_of
from helpdesk_common.identity import CurrentPrincipal, require_user
from helpdesk_common.responses import JSONBytesResponse

from . import policies, service
from .schemas import DefaultPolicyRead, TimerList

router = APIRouter(prefix="/v1/sla", tags=["sla"])


@router.get("/tickets/{ticket_id}/timers", response_model=TimerList, summary="A ticket's SLA timers")
async def ticket_timers(request: Request, ticket_id: uuid.UUID, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).engine.connect() as conn:
        body = await service.timers_of(conn, ticket_id=ticket_id)
    return JSONBytesResponse(body)


@router.get("/policies/default", response_model=DefaultPolicyRead, summary="Default targets by priority")
async def default_policy(principal: CurrentPrincipal) -> JSONBytesResponse:
    require_user(principal)
    return JSONBytesResponse(policies.default_policy_table())
