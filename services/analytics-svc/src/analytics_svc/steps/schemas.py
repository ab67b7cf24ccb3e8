"""Pydantic shapes of the step figures (documentation; the body is built by ``service``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class StepFigures(BaseModel):
    step: str = Field(description="the step's key in the process definition")
    kind: str | None
    started: int = Field(ge=0, description="runs of the step started in the window")
    completed: int = Field(ge=0, description="of those, the ones finished")
    open_now: int = Field(ge=0, description="runs of the step not finished now, whenever they started")
    median_duration_s: float | None = Field(description="median seconds from start to finish of the finished runs")
    p90_duration_s: float | None
    max_duration_s: float | None
    rejected: int = Field(ge=0, description="finished runs that ended rejected")
    rejection_rate: float | None = Field(ge=0, le=1, description="rejected / completed; null when none finished")
    decisions: int = Field(ge=0, description="approval and countersign decisions on the runs")
    reject_decisions: int = Field(ge=0)


class StepsRead(BaseModel):
    ticket_type: str | None
    from_: datetime | None = Field(alias="from")
    to: datetime | None
    items: list[StepFigures]
