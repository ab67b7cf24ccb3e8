"""Behaviour events as the API takes and shows them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, Field, StringConstraints, field_validator

from helpdesk_common.validation import AwareUtcDatetime, StrictModel

from ..orders.schemas import ExternalId

KINDS = ("login", "purchase", "page_view", "coupon", "signup", "search", "cart", "custom")
#: a known kind, or custom:<name> for anything else
KIND_PATTERN = r"^(login|purchase|page_view|coupon|signup|search|cart|custom(:[a-z0-9][a-z0-9_.-]{0,39})?)$"
MAX_PROPERTIES_BYTES = 4096


class InteractionIn(StrictModel):
    kind: Annotated[str, StringConstraints(pattern=KIND_PATTERN)] = Field(
        description="login, purchase, page_view, coupon, signup, search, cart, custom or custom:<name>")
    occurred_at: AwareUtcDatetime = Field(description="RFC 3339 with offset.")
    external_id: ExternalId | None = Field(
        None, description="The event's id at its source: the same id again for the customer records nothing.")
    properties: dict[str, Any] = Field(default_factory=dict,
                                       description=f"Free JSON, at most {MAX_PROPERTIES_BYTES} bytes encoded.")

    @field_validator("properties")
    @classmethod
    def _bounded(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            encoded = orjson.dumps(value)
        except orjson.JSONEncodeError:  # an integer beyond 64 bits: jsonb would take it, the events could not
            raise ValueError("numbers must fit in 64 bits") from None
        if len(encoded) > MAX_PROPERTIES_BYTES:
            raise ValueError(f"must be at most {MAX_PROPERTIES_BYTES} bytes as JSON")
        return value


class InteractionRead(BaseModel):
    id: uuid.UUID
    customer_id: uuid.UUID
    kind: str
    occurred_at: datetime
    external_id: str | None
    properties: dict[str, Any]
    created_at: datetime


class InteractionPage(BaseModel):
    items: list[InteractionRead]
    next_cursor: str | None
