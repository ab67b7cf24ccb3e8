"""Step figures for users (channels get 403): where processes wait, and which steps say no."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from helpdesk_common.app import runtime_of
from helpdesk_common.identity import CurrentPrincipal, require_user
from helpdesk_common.responses import JSONBytesResponse
from helpdesk_common.validation import AwareUtcDatetime

from . import service
from .schemas import StepsRead

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])


@router.get("/steps", response_model=StepsRead, summary="Per process step: durations, rejections, open runs")
async def get_steps(
    request: Request,
    principal: CurrentPrincipal,
    ticket_type: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    start: Annotated[AwareUtcDatetime | None, Query(alias="from", description="runs started at or after")] = None,
    end: Annotated[AwareUtcDatetime | None, Query(alias="to", description="runs started before")] = None,
) -> JSONBytesResponse:
    require_user(principal)
    async with runtime_of(request).raw_connection() as conn:
        body = await service.steps(conn, ticket_type=ticket_type, start=start, end=end)
    return JSONBytesResponse(body)
