"""Pydantic shapes of the customer API (documentation and tests; the hot path renders rows with orjson)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import Query
from pydantic import BaseModel, ConfigDict

from helpdesk_common.pagination import DEFAULT_LIMIT, MAX_LIMIT

NO_NUL = r"^[^\x00]*$"


class IdentityRead(BaseModel):
    kind: str
    value: str


class CustomerRead(BaseModel):
    id: uuid.UUID
    name: str | None
    identities: list[IdentityRead]
    created_at: datetime
    updated_at: datetime
    version: int


class CustomerPage(BaseModel):
    items: list[CustomerRead]
    next_cursor: str | None


class CustomerListQuery(BaseModel):
    """Query string of ``GET /v1/customers``; filters combine with AND."""

    model_config = ConfigDict(extra="forbid")

    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT
    cursor: Annotated[str | None, Query(max_length=512, pattern=NO_NUL)] = None
    email: Annotated[str | None, Query(max_length=254, pattern=NO_NUL, description="exact, case-insensitive")] = None
    phone: Annotated[str | None, Query(max_length=32, pattern=NO_NUL, description="exact, separators ignored")] = None
