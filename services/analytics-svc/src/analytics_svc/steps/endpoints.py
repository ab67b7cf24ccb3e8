"""Step figures for users (channels get 403), scoped by role (access.py): where processes wait, and which steps
say no; ``format=csv|xlsx`` for a download."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from helpdesk_common.app import runtime_of
from helpdesk_common.identity import CurrentPrincipal
from helpdesk_common.responses import JSONBytesResponse
from helpdesk_common.validation import AwareUtcDatetime

from .. import access
from ..reports import formats
from ..reports.repository import ticket_scope_sql
from ..reports.service import choose
from . import service
from .schemas import StepsRead

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])


@router.get("/steps", response_model=StepsRead, responses=formats.DOWNLOAD_RESPONSES,
             summary="Per process step: durations, rejections, open runs")
async def get_steps(
    request: Request,
    principal: CurrentPrincipal,
    ticket_type: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    start: Annotated[AwareUtcDatetime | None, Query(alias="from", description="runs started at or after")] = None,
    end: Annotated[AwareUtcDatetime | None, Query(alias="to", description="runs started before")] = None,
    team_id: Annotated[uuid.UUID | None, Query(description="only this team's tickets")] = None,
    agent_id: Annotated[str | None, Query(min_length=1, max_length=128, description="only this agent's tickets")] = None,
    format: Annotated[str, Query(max_length=8, description="json (default), csv or xlsx",
                                 json_schema_extra={"enum": list(formats.FORMATS)})] = "json",
) -> Response:
    fmt = choose("format", format, formats.FORMATS)
    scope = await access.caller_scope(request, principal)
    scope_sql, scope_args = ticket_scope_sql(access.ticket_scope(scope, team_id=team_id, agent_id=agent_id), "m", 4)
    async with runtime_of(request).raw_connection() as conn:
        body = await service.steps(conn, ticket_type=ticket_type, start=start, end=end, scope_sql=scope_sql,
                                   scope_args=scope_args)
    if fmt == "json":
        return JSONBytesResponse(body)
    header, rows = service.step_rows(body)
    return formats.download(fmt, name="steps", header=header, rows=rows)
