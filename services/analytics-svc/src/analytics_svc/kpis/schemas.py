"""Pydantic shapes of the analytics API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class CsatFigures(BaseModel):
    responses: int = Field(ge=0)
    average: float | None = Field(ge=1, le=5, description="mean rating, 2 decimals; null without answers")
    satisfied_share: float | None = Field(ge=0, le=1, description="share of ratings 4-5; null without answers")


class NpsFigures(BaseModel):
    responses: int = Field(ge=0)
    promoters: int = Field(ge=0, description="scores 9-10")
    passives: int = Field(ge=0, description="scores 7-8")
    detractors: int = Field(ge=0, description="scores 0-6")
    score: int | None = Field(ge=-100, le=100, description="promoters% - detractors%; null without answers")


class Kpis(BaseModel):
    tickets_created_today: int
    open_tickets: int
    tickets_total: int
    tickets_linked_to_customer: int
    tickets_with_sla: int
    csat: CsatFigures = Field(description="CSAT answers given on the same local day as tickets_created_today")
    nps: NpsFigures = Field(description="NPS answers given on the same local day as tickets_created_today")
    unassigned_tickets: int = Field(description="open tickets with no assignee")
    overdue_tickets: int = Field(description="open tickets with a running SLA target past due or breached "
                                 "(each ticket once)")
    at_risk_tickets: int = Field(description="open tickets not overdue with a running SLA target warned "
                                 "(yellow/red) or in its last quarter (each ticket once)")
    first_reply_minutes_p50_today: float | None = Field(description="exact median of today's first replies")
    resolution_minutes_p50_today: float | None = Field(description="exact median of today's resolutions")
    csat_percent_today: float | None = Field(description="share of today's CSAT ratings 4-5, x 100")
    sla_compliance_percent_today: float | None = Field(description="achieved / all SLA outcomes today, x 100")
    backlog: dict[str, int] = Field(description="open tickets by age: lt_1h, 1h_8h, 8h_24h, 1d_3d, 3d_7d, 7d_30d, "
                                                "ge_30d")
    as_of: datetime | None = Field(description="the time of the newest event folded in; null before any")
    tz: str
