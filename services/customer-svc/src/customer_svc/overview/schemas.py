"""The 360 view as the API shows it (the document's shape; the service builds plain dicts)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from ..customers.schemas import CustomerRead


class OrganizationRef(BaseModel):
    id: uuid.UUID
    name: str | None
    tier: str | None


class TicketItem(BaseModel):
    id: uuid.UUID
    number: int | None
    subject: str | None
    status: str
    priority: str | None
    type: str | None
    channel: str | None
    created_at: datetime
    first_response_at: datetime | None
    solved_at: datetime | None
    closed_at: datetime | None


class Timing(BaseModel):
    median: float | None
    average: float | None


class Tickets(BaseModel):
    open: int = Field(description="open tickets of the customer (care and follow-up tasks apart)")
    total: int
    solved_recently: int = Field(description="solved or closed in the last window_days")
    open_tasks: int = Field(description="open care and follow-up tasks about the customer")
    recent: list[TicketItem] = Field(description="the newest open tickets, then the last solved or closed")
    first_response_minutes: Timing
    resolution_minutes: Timing
    window_days: int


class CsatAnswer(BaseModel):
    rating: int
    comment: str | None
    at: datetime
    ticket_id: uuid.UUID | None


class Csat(BaseModel):
    average: float | None
    count: int
    window_days: int
    last: CsatAnswer | None


class NpsAnswer(BaseModel):
    score: int
    comment: str | None
    at: datetime


class Nps(BaseModel):
    last: NpsAnswer | None


class SegmentName(BaseModel):
    en: str
    zh_cn: str = Field(alias="zh-CN")


class Rfm(BaseModel):
    r: int | None
    f: int | None
    m: int | None
    segment: str | None
    segment_name: SegmentName | None
    recency_days: int | None
    frequency: int | None
    monetary: str | None
    at: datetime | None


class ChurnRisk(BaseModel):
    score: int | None
    band: str | None
    reasons: list[dict[str, Any]]
    at: datetime | None


class CurrencyTotal(BaseModel):
    currency: str
    count: int
    amount: str


class LastOrder(BaseModel):
    id: uuid.UUID
    source: str
    external_id: str
    ordered_at: datetime
    amount: str
    currency: str
    status: str


class Orders(BaseModel):
    count: int
    total_amount: str
    currency: str
    by_currency: list[CurrencyTotal]
    unconverted_currencies: list[str]
    last_at: datetime | None
    last: LastOrder | None
    complete: bool


class LastContact(BaseModel):
    at: datetime | None
    channel: str | None


class Customer360(BaseModel):
    customer: CustomerRead
    organization: OrganizationRef | None
    tier: str | None
    account_owner_id: uuid.UUID | None
    tickets: Tickets
    csat: Csat
    nps: Nps
    rfm: Rfm
    churn_risk: ChurnRisk
    orders: Orders
    last_contact: LastContact
