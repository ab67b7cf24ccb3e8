from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from helpdesk_common.app import runtime_of
from helpdesk_common.identity import CurrentPrincipal, require_user

from . import repository, service

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])


class Kpis(BaseModel):
    tickets_created_today: int
    open_tickets: int
    tickets_total: int
    tickets_linked_to_customer: int
    tickets_with_sla: int
    as_of: datetime
    tz: str


@router.get("/kpis", response_model=Kpis, summary="Headline KPIs, built from events")
async def get_kpis(
    request: Request,
    principal: CurrentPrincipal,
    tz: Annotated[str, Query(max_length=64, description="IANA zone that defines 'today'")] = "UTC",
) -> Kpis:
    require_user(principal)
    now = datetime.now(UTC)
    day_start = service.start_of_day(now, tz)
    async with runtime_of(request).engine.connect() as conn:
        values = await repository.kpis(conn, day_start=day_start)
    return Kpis(**values, as_of=now, tz=tz)
