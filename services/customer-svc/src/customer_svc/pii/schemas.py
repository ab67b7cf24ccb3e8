"""The audit of unmasked reads and exports as the API shows it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import Query
from pydantic import BaseModel

from helpdesk_common.pagination import DEFAULT_LIMIT, MAX_LIMIT
from helpdesk_common.validation import AwareUtcDatetime

from ..fields import NO_NUL


class PiiAccessRead(BaseModel):
    id: int
    at: datetime
    #: who (``user:<id>``) and their role at the time
    actor: str
    actor_role: str | None
    customer_id: uuid.UUID
    #: what was shown unmasked or exported, e.g. ``identities.email``
    fields: list[str]
    #: ``read``: shown unmasked in an answer; ``export``: included in an export
    purpose: Literal["read", "export"]
    #: why the caller could: ``role`` (CUSTOMER_PII_UNMASKED_ROLES) or ``assignee`` (works a ticket of the customer)
    reason: str
    #: the view that showed it (``customers.read``, ``customers.list``, ``customers.overview``, ``duplicates``...)
    route: str
    request_id: str | None


class PiiAccessPage(BaseModel):
    items: list[PiiAccessRead]
    next_cursor: str | None


class PiiAccessQuery(BaseModel):

    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT
    cursor: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None
    actor: Annotated[str | None, Query(min_length=1, max_length=200, pattern=NO_NUL,
                                       description="only this caller's reads (``user:<id>``)")] = None
    purpose: Literal["read", "export"] | None = None
    since: Annotated[AwareUtcDatetime | None, Query(description="only rows from this time: RFC 3339 with offset")] = None


class CustomerPiiAccessQuery(PiiAccessQuery):
    pass
