"""The audit of unmasked requester reads and exports as the API shows it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import Query
from pydantic import BaseModel

from helpdesk_common.openapi import NO_NUL_PATTERN
from helpdesk_common.pagination import DEFAULT_LIMIT, MAX_LIMIT
from helpdesk_common.validation import AwareUtcDatetime


class PiiAccessRead(BaseModel):
    id: int
    at: datetime
    #: who (``user:<id>``) and their role at the time
    actor: str
    actor_role: str | None
    ticket_id: uuid.UUID
    #: what was shown unmasked, e.g. ``requester.email``
    fields: list[str]
    #: ``read``: shown unmasked in an answer; ``export``: in the incremental export or a download
    purpose: Literal["read", "export"]
    #: why the caller could: ``role`` (TICKET_PII_UNMASKED_ROLES) or ``assignee`` (works the ticket)
    reason: Literal["role", "assignee"]
    #: the route that answered (``/v1/tickets/{ticket_id}``, ``/v1/export/tickets.csv``...)
    route: str
    request_id: str | None


class PiiAccessPage(BaseModel):
    items: list[PiiAccessRead]
    next_cursor: str | None


class PiiAccessQuery(BaseModel):
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT
    cursor: Annotated[str | None, Query(max_length=64, pattern=NO_NUL_PATTERN)] = None
    actor: Annotated[str | None, Query(min_length=1, max_length=200, pattern=NO_NUL_PATTERN,
                                       description="only this caller's reads (``user:<id>``)")] = None
    purpose: Literal["read", "export"] | None = None
    since: Annotated[AwareUtcDatetime | None, Query(description="only rows from this time: RFC 3339 with offset")] = None
