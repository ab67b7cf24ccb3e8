from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from helpdesk_common.text import OneLine
from helpdesk_common.validation import Int32, StrictModel, fold_key

from ..tickets.schemas import Priority, Status


class ViewFilters(StrictModel):
    status: Annotated[list[Status], Field(max_length=6)] | None = None
    priority: Priority | None = None
    #: an agent id, "me" (whoever opens the view) or "none" (unassigned)
    assignee_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    team_id: uuid.UUID | None = None
    tags: Annotated[list[Annotated[str, StringConstraints(min_length=1, max_length=64)]], Field(max_length=10)] | None = None
    channel: Annotated[str, StringConstraints(max_length=32)] | None = None
    type: Annotated[str, StringConstraints(max_length=64)] | None = None
    sla_state: Literal["green", "yellow", "red", "breached", "none"] | None = None
    customer_tier: Annotated[str, StringConstraints(min_length=1, max_length=50), AfterValidator(fold_key)] | None = None
    q: Annotated[str, StringConstraints(max_length=500)] | None = None


class ViewIn(StrictModel):
    name: OneLine(128)
    filters: ViewFilters
    position: Int32 = 0


class ViewRead(BaseModel):
    id: uuid.UUID
    name: str
    filters: dict
    position: int
    created_at: datetime
