from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from helpdesk_common.text import OneLine
from helpdesk_common.validation import StrictModel

from ..tickets.schemas import TicketPatch


class MacroReply(StrictModel):
    body: Annotated[str, StringConstraints(min_length=1, max_length=65_536)]
    public: bool = True


class MacroIn(StrictModel):
    name: OneLine(128)
    #: the same fields as PATCH /v1/tickets/{id}
    actions: TicketPatch = Field(default_factory=TicketPatch)
    reply: MacroReply | None = None
    #: visible to every agent (supervisors and admins only); else personal
    shared: bool = False


class MacroRead(BaseModel):
    id: uuid.UUID
    name: str
    actions: dict[str, Any]
    reply: dict[str, Any] | None
    shared: bool
    created_by: str
    updated_at: datetime
