"""SLA reads for users (channels get 403): per-ticket status and the compliance summary. A
ticket's SLA is shown to whoever may read the ticket (ticket-svc's rule, asked through
helpdesk_common.ticket_access): another team's ticket is a 404 here as it is in ticket-svc."""

from __future__ import annotations

import uuid

from typing import Annotated

from fastapi import APIRouter, Query, Request

from helpdesk_common.app import runtime_of
from helpdesk_common.identity import CurrentPrincipal
from helpdesk_common.openapi import problem_responses
from helpdesk_common.problems import Problem
from helpdesk_common.responses import JSONBytesResponse
from helpdesk_common.ticket_access import ticket_access_of
from helpdesk_common.validation import AwareUtcDatetime

from ..http import require_reader
from . import service
from .schemas import ComplianceRead, TicketSlaRead, TimerList

router = APIRouter(prefix="/v1/sla", tags=["sla"])


@router.get("/tickets/{ticket_id}", response_model=TicketSlaRead, summary="A ticket's SLA status per metric",
            responses=problem_responses(404, 503))
async def ticket_status(request: Request, ticket_id: uuid.UUID, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_reader(principal)
    await ticket_access_of(request).require_readable(request, principal, ticket_id)
    async with runtime_of(request).engine.connect() as conn:
        body = await service.status_of(conn, ticket_id=ticket_id)
    return JSONBytesResponse(body)


@router.get("/tickets/{ticket_id}/timers", response_model=TimerList, summary="A ticket's SLA timers (raw)",
            responses=problem_responses(404, 503))
async def ticket_timers(request: Request, ticket_id: uuid.UUID, principal: CurrentPrincipal) -> JSONBytesResponse:
    require_reader(principal)
    await ticket_access_of(request).require_readable(request, principal, ticket_id)
    async with runtime_of(request).engine.connect() as conn:
        body = await service.timers_of(conn, ticket_id=ticket_id)
    return JSONBytesResponse(body)


@router.get("/compliance", response_model=ComplianceRead, summary="Fulfilled on time vs breached, per metric")
async def compliance(
    request: Request, principal: CurrentPrincipal,
    start: Annotated[AwareUtcDatetime, Query(alias="from")], end: Annotated[AwareUtcDatetime, Query(alias="to")],
) -> JSONBytesResponse:
    require_reader(principal)
    if end <= start:
        raise Problem(422, "validation-error", "Validation failed", "'to' must be after 'from'.",
                      errors=[{"field": "query.to", "message": "must be after from", "code": "range"}])
    async with runtime_of(request).engine.connect() as conn:
        body = await service.compliance(conn, start=start, end=end)
    return JSONBytesResponse(body)



