"""Pydantic shapes of the SLA API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel


class TimerRead(BaseModel):
    metric: Literal["first_response", "next_response", "resolution"]
    policy: str
    target_minutes: int
    started_at: datetime
    due_at: datetime
    status: str


class TimerList(BaseModel):
    items: list[TimerRead]


class DefaultPolicyRead(BaseModel):
    name: str
    calendar: str
    first_response_minutes: dict[str, int]
