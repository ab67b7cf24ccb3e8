"""The timeline as the API takes and shows it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel, ConfigDict

from helpdesk_common.pagination import DEFAULT_LIMIT, MAX_LIMIT

from ..fields import NO_NUL

#: a kind (``ticket.solved``) or a family (``ticket``); a comma-separated list of them
KIND_LIST_PATTERN = r"^[a-z][a-z_]{0,39}(\.[a-z][a-z_]{0,39})?(,[a-z][a-z_]{0,39}(\.[a-z][a-z_]{0,39})?){0,19}$"


class TimelineQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT
    cursor: Annotated[str | None, Query(max_length=512, pattern=NO_NUL)] = None
    kind: Annotated[str | None, Query(max_length=1000, pattern=KIND_LIST_PATTERN,
                                      description="kinds or families, comma-separated: ticket,order.recorded")] = None


class TimelineEntry(BaseModel):
    id: uuid.UUID
    at: datetime
    kind: str
    ref_id: uuid.UUID | None
    summary: dict[str, Any]


class TimelinePage(BaseModel):
    items: list[TimelineEntry]
    next_cursor: str | None
