from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints, model_validator

from helpdesk_common.validation import StrictModel

Priority = Literal["low", "normal", "high", "urgent"]
Status = Literal["new", "open", "pending", "on_hold", "solved", "closed"]

ShortText = Annotated[str, StringConstraints(min_length=1, max_length=256, strip_whitespace=True)]
Email = Annotated[
    str, StringConstraints(max_length=254, strip_whitespace=True, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
]
Phone = Annotated[str, StringConstraints(max_length=32, strip_whitespace=True, pattern=r"^\+?[0-9 ()\-.]{3,32}$")]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True)]


class RequesterIn(StrictModel):
    name: Annotated[str, StringConstraints(max_length=256, strip_whitespace=True)] | None = None
    email: Email | None = None
    phone: Phone | None = None
    wechat_openid: Annotated[str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True)] | None = None
    external_id: ShortText | None = None

    @model_validator(mode="after")
    def _has_identity(self) -> "RequesterIn":
        if not (self.email or self.phone or self.wechat_openid or self.external_id):
            raise ValueError("requester needs at least one of email, phone, wechat_openid, external_id")
        return self


class TicketCreate(StrictModel):
    subject: Annotated[str, StringConstraints(min_length=1, max_length=500, strip_whitespace=True)]
    description: Annotated[str, StringConstraints(max_length=65_536)] = ""
    requester: RequesterIn
    priority: Priority = "normal"
    type: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    tags: Annotated[list[Tag], Field(max_length=50)] = Field(default_factory=list)
    custom_fields: Annotated[dict[Annotated[str, StringConstraints(min_length=1, max_length=64)], Any], Field(max_length=100)] = Field(
        default_factory=dict
    )


class SlaRead(BaseModel):
    first_response_due_at: datetime | None = None


class TicketRead(BaseModel):
    id: uuid.UUID
    number: int
    subject: str
    description: str
    status: Status
    priority: Priority
    type: str | None
    channel: str | None
    tags: list[str]
    custom_fields: dict[str, Any]
    requester: dict[str, Any]
    customer_id: uuid.UUID | None
    sla: SlaRead
    created_at: datetime
    updated_at: datetime
    version: int


class TicketPage(BaseModel):
    items: list[TicketRead]
    next_cursor: str | None
