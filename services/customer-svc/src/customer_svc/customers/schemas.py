"""Pydantic shapes of the customer API (documentation and tests; the hot path renders rows with orjson)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import Query
from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

from helpdesk_common.pagination import DEFAULT_LIMIT, MAX_LIMIT
from helpdesk_common.text import OneLine
from helpdesk_common.validation import StrictModel, fold_key

NO_NUL = r"^[^\x00]*$"


Tier = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50, pattern=r"^[^\x00-\x1f]*$"),
                 AfterValidator(fold_key)]
#: the display name of the To: of every mail to the customer: one line (helpdesk_common.text)
Name = OneLine(200)


class IdentityRead(BaseModel):
    kind: str
    value: str


class CustomerRead(BaseModel):
    id: uuid.UUID
    name: str | None
    tier: str | None
    identities: list[IdentityRead]
    created_at: datetime
    updated_at: datetime
    version: int


class CustomerUpdate(StrictModel):
    """``PATCH /v1/customers/{id}``: only the fields sent change; ``null`` clears them.

    The tier drives routing and SLA targets, so only supervisors and admins set it."""

    name: Name | None = None
    tier: Tier | None = None


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
    tier: Annotated[str | None, Query(min_length=1, max_length=50, pattern=NO_NUL,
                                      description="exact, compared like the stored tier (case-folded)")] = None
