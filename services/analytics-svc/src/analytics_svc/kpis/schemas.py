"""Pydantic shapes of the analytics API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class Kpis(BaseModel):
    tickets_created_today: int
    open_tickets: int
    tickets_total: int
    tickets_linked_to_customer: int
    tickets_with_sla: int
    as_of: datetime
    tz: str
