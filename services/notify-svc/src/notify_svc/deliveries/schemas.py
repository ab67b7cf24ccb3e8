"""Delivery API shapes. The payload (what is sent: a reply's text, a webhook's event) is not in
the answers: the agent reads the message in ticket-svc, and a webhook's body may be large."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

Kind = Literal["reply", "notification", "webhook", "survey", "confirmation"]
Status = Literal["queued", "sending", "sent", "failed", "undeliverable"]
#: what asked for an attempt: the retry schedule (the first attempt included), a manual retry
#: (POST /v1/deliveries/{id}/retry), a webhook replay
Trigger = Literal["schedule", "retry", "replay"]


class AttemptRead(BaseModel):
    number: int
    started_at: datetime
    duration_ms: float
    #: sent | transient | permanent | undeliverable (channels/base.py)
    outcome: Literal["sent", "transient", "permanent", "undeliverable"]
    #: the provider's status or error code ("550", "45015", "503")
    code: str | None
    error: str | None
    trigger: Trigger


class DeliveryRead(BaseModel):
    #: the stable id carried to the receiver (a webhook's ``webhook-id``)
    id: uuid.UUID
    kind: Kind
    channel: str
    #: the per-destination limit this delivery counts against (an SMTP server, a WeChat app, a host)
    destination: str
    status: Status
    attempts: int
    max_attempts: int
    next_attempt_at: datetime | None
    reason: str | None
    last_code: str | None
    provider_id: str | None
    ticket_id: uuid.UUID | None
    message_id: uuid.UUID | None
    subscription_id: uuid.UUID | None
    event_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    #: when the provider last accepted it
    sent_at: datetime | None
    #: how many times it was replayed (webhooks: POST /v1/webhooks/{id}/deliveries/{id}/replay)
    replays: int


class DeliveryDetail(DeliveryRead):
    #: every attempt, oldest first
    attempts_log: list[AttemptRead]


class DeliveryList(BaseModel):
    items: list[DeliveryRead]
    next_cursor: str | None
