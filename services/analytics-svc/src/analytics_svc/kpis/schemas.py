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
    as_of: datetime
    tz: str
