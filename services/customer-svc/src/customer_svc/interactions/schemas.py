"""Behaviour events as the API takes and shows them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, Field, StringConstraints, WithJsonSchema, field_validator

from helpdesk_common.openapi import JSON_VALUE_DEPTH, JSON_VALUE_REF
from helpdesk_common.validation import AwareUtcDatetime, StrictModel

from ..orders.schemas import ExternalId

KINDS = ("login", "purchase", "page_view", "coupon", "signup", "search", "cart", "custom")
#: a known kind, or custom:<name> for anything else
KIND_PATTERN = r"^(login|purchase|page_view|coupon|signup|search|cart|custom(:[a-z0-9][a-z0-9_.-]{0,39})?)$"
MAX_PROPERTIES_BYTES = 4096
MAX_PROPERTIES = 50
INT64 = 2**63


def value_problem(value: Any, depth: int = 0) -> str | None:
    """Why a free-form value is refused, or None: what the document's JsonValue states (numbers
    within 64 bits, floats too; lists and objects nested at most JSON_VALUE_DEPTH deep)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return None
    if isinstance(value, (int, float)):
        return None if -INT64 <= value <= INT64 - 1 else "numbers must be within 64 bits"
    if isinstance(value, (list, dict)):
        if depth >= JSON_VALUE_DEPTH:
            return f"must not nest lists or objects more than {JSON_VALUE_DEPTH} deep"
        for item in value.values() if isinstance(value, dict) else value:
            if (found := value_problem(item, depth + 1)) is not None:
                return found
        return None
    return "must be a JSON value"


Properties = Annotated[
    dict[Annotated[str, StringConstraints(max_length=64)],
         Annotated[Any, WithJsonSchema({"allOf": [{"$ref": JSON_VALUE_REF}]})]],
    Field(max_length=MAX_PROPERTIES),
]


class InteractionIn(StrictModel):
    kind: Annotated[str, StringConstraints(pattern=KIND_PATTERN)] = Field(
        description="login, purchase, page_view, coupon, signup, search, cart, custom or custom:<name>")
    occurred_at: AwareUtcDatetime = Field(description="RFC 3339 with offset.")
    external_id: ExternalId | None = Field(
        None, description="The event's id at its source: the same id again for the customer records nothing.")
    properties: Properties = Field(default_factory=dict, description=(
        f"Free JSON (at most {MAX_PROPERTIES} keys of at most 64 characters; numbers within 64 bits; nested at "
        f"most {JSON_VALUE_DEPTH} deep), at most {MAX_PROPERTIES_BYTES} bytes encoded."))

    @field_validator("properties")
    @classmethod
    def _bounded(cls, value: dict[str, Any]) -> dict[str, Any]:
        for item in value.values():  # each one a JsonValue of the document
            problem = value_problem(item)
            if problem is not None:
                raise ValueError(problem)
        if len(orjson.dumps(value)) > MAX_PROPERTIES_BYTES:
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
