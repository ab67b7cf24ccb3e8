"""Webhook subscription API shapes. The secret appears only in ``WebhookWithSecret``: the
answers of the create and rotate-secret calls, once."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator

from helpdesk_common.events import TOPIC_BY_TYPE
from helpdesk_common.validation import StrictModel

#: events never offered to webhook receivers, so never subscribable: a reply request carries a
#: DingTalk session webhook and attachment capability URLs (docs/channels/outbound.md), a survey
#: delivery request the signed answer link (whoever holds it answers for the customer), and so does a
#: confirmation request; notification and webhook requests are orders to notify-svc, not facts
NOT_FOR_WEBHOOKS = frozenset({"ticket.reply_requested", "survey.delivery_requested", "ticket.confirmation_requested",
                              "ticket.notification_requested", "ticket.webhook_requested"})
#: every other event type the system publishes (helpdesk_common.events)
EventType = Literal[tuple(sorted(set(TOPIC_BY_TYPE) - NOT_FOR_WEBHOOKS))]  # type: ignore[valid-type]
Url = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
Description = Annotated[str, StringConstraints(max_length=500)]
EventTypes = Annotated[list[EventType], Field(min_length=1, max_length=len(TOPIC_BY_TYPE) - len(NOT_FOR_WEBHOOKS),
                                              json_schema_extra={"uniqueItems": True})]


def _distinct(value: list[str] | None) -> list[str] | None:
    return None if value is None else list(dict.fromkeys(value))


class WebhookCreate(StrictModel):
    #: http or https; refused (422) when it names an address the egress policy refuses
    #: (docs/webhooks.md "SSRF"); names are checked again at every delivery
    url: Url
    event_types: EventTypes
    description: Description = ""

    _types = field_validator("event_types")(classmethod(lambda cls, v: _distinct(v)))


class WebhookPatch(StrictModel):
    """Fields to change; absent fields stay. Enabling a subscription clears its disabled reason
    and its failure history."""

    # typed without null: an explicit null is a 422; an absent field keeps its value
    url: Url = None  # type: ignore[assignment]
    event_types: EventTypes = None  # type: ignore[assignment]
    description: Description = None  # type: ignore[assignment]
    enabled: bool = None  # type: ignore[assignment]

    _types = field_validator("event_types")(classmethod(lambda cls, v: _distinct(v)))


class WebhookRead(BaseModel):
    id: uuid.UUID
    url: str
    event_types: list[str]
    description: str
    enabled: bool
    disabled_reason: str | None
    #: start of the current run of failed deliveries (none since the last success); after 5 days
    #: of it the subscription is disabled (docs/webhooks.md)
    failing_since: datetime | None
    #: while a rotated-out secret still signs (24 h after a rotation)
    previous_secret_expires_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime


class WebhookWithSecret(WebhookRead):
    #: ``whsec_`` + base64: shown in this answer only, never again
    secret: str


class WebhookList(BaseModel):
    items: list[WebhookRead]
    next_cursor: str | None
