from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema, field_validator,
                      model_validator)

from helpdesk_common.openapi import JSON_VALUE_REF
from helpdesk_common.text import OneLine, one_line
from helpdesk_common.validation import EMAIL_PATTERN, NOT_BLANK, WHITESPACE, StrictModel, not_null

from ..forms.limits import value_problem

Priority = Literal["low", "normal", "high", "urgent"]
Status = Literal["new", "open", "pending", "on_hold", "solved", "closed"]

ShortText = Annotated[str, StringConstraints(min_length=1, max_length=256, strip_whitespace=True, pattern=NOT_BLANK)]
Email = Annotated[
    str, StringConstraints(max_length=254, strip_whitespace=True, pattern=EMAIL_PATTERN)
]
#: 3 to 32 of digits, spaces and ( ) - . after an optional +, once stripped (the pattern takes the
#: whitespace stripping removes, so it says the same in the API document as here)
Phone = Annotated[str, StringConstraints(max_length=32, strip_whitespace=True, pattern=(
    f"^[{WHITESPACE}]*(?:\\+[0-9 ()\\-.]{{2,30}}[0-9()\\-.]|[0-9()\\-.][0-9 ()\\-.]{{1,30}}[0-9()\\-.])[{WHITESPACE}]*$"))]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True, pattern=NOT_BLANK)]


class RequesterIn(StrictModel):
    """Who asked: at least one of email, phone, wechat_openid, external_id identifies them."""

    model_config = ConfigDict(json_schema_extra={"anyOf": [
        {"required": [name], "properties": {name: {"type": "string"}}}
        for name in ("email", "phone", "wechat_openid", "external_id")]})

    #: the display name of a mail address: one line (a CR/LF would be a header injection), empty → none
    name: Annotated[str, StringConstraints(max_length=256), AfterValidator(lambda v: one_line(v) or None)] | None = None
    email: Email | None = None
    phone: Phone | None = None
    wechat_openid: Annotated[str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True, pattern=NOT_BLANK)] | None = None
    external_id: ShortText | None = None

    @model_validator(mode="after")
    def _has_identity(self) -> "RequesterIn":
        if not (self.email or self.phone or self.wechat_openid or self.external_id):
            raise ValueError("requester needs at least one of email, phone, wechat_openid, external_id")
        return self


Language = Annotated[str, StringConstraints(min_length=2, max_length=16, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]


def _custom_value(value: Any) -> Any:
    """Depth and 64-bit integers checked per value before the request goes any further (the
    idempotency hash and the event encoder cannot take larger integers); sizes are checked by
    the form engine, which knows which fields a form defines (``forms/limits.py``)."""
    problem = value_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


CustomFields = Annotated[
    dict[Annotated[str, StringConstraints(min_length=1, max_length=64)],
         Annotated[Any, AfterValidator(_custom_value), WithJsonSchema({"allOf": [{"$ref": JSON_VALUE_REF}]})]],
    Field(max_length=100),
]
AgentId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
#: the subject of every mail about the ticket: one line, no bidi controls (helpdesk_common.text)
Subject = OneLine(500)


class TicketCreate(StrictModel):
    subject: Subject
    description: Annotated[str, StringConstraints(max_length=65_536)] = ""
    requester: RequesterIn
    priority: Priority = "normal"
    type: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    tags: Annotated[list[Tag], Field(max_length=50)] = Field(default_factory=list)
    custom_fields: CustomFields = Field(default_factory=dict)
    language: Language | None = None
    cc: Annotated[list[Email], Field(max_length=50)] = Field(default_factory=list)
    #: agents only: assign at creation (else routing decides)
    assignee_id: AgentId | None = None
    team_id: uuid.UUID | None = None


class TicketPatch(StrictModel):
    """Fields left out stay as they are; ``null`` clears assignee_id / team_id. Subject, status
    and priority cannot be null: every ticket has them (a null priority reached the NOT NULL
    column as a 500, found by schemathesis)."""

    subject: Subject | None = Field(None, json_schema_extra=not_null)
    #: a status category or the key of an active custom status
    status: Annotated[str, StringConstraints(min_length=1, max_length=48)] | None = Field(
        None, json_schema_extra=not_null)
    priority: Priority | None = Field(None, json_schema_extra=not_null)
    type: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    language: Language | None = None
    assignee_id: AgentId | None = None
    team_id: uuid.UUID | None = None
    tags: Annotated[list[Tag], Field(max_length=50)] | None = None
    add_tags: Annotated[list[Tag], Field(max_length=50)] | None = None
    remove_tags: Annotated[list[Tag], Field(max_length=50)] | None = None
    cc: Annotated[list[Email], Field(max_length=50)] | None = None
    followers: Annotated[list[AgentId], Field(max_length=50)] | None = None
    #: merged into the current values; ``null`` for a key clears it
    custom_fields: CustomFields | None = None

    @field_validator("subject", "status", "priority", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:  # runs only for fields that were sent
        if value is None:
            raise ValueError("cannot be null (leave the field out to keep it)")
        return value


class SlaRead(BaseModel):
    first_response_due_at: datetime | None = None
    first_response_at: datetime | None = None
    #: the worst of the ticket's running SLA timers
    state: Literal["green", "yellow", "red", "breached"] | None = None
    next_due_at: datetime | None = None


class CsatRead(BaseModel):
    #: 1 (very unsatisfied) to 5 (very satisfied)
    rating: int = Field(ge=1, le=5)
    #: the customer's own words, if any (at most 2,000 characters)
    comment: str | None = None
    answered_at: datetime


class TicketRead(BaseModel):
    id: uuid.UUID
    number: int
    subject: str
    description: str
    status: Status
    custom_status_id: uuid.UUID | None
    priority: Priority
    type: str | None
    channel: str | None
    language: str | None
    tags: list[str]
    custom_fields: dict[str, Any]
    form_version: int | None
    requester: dict[str, Any]
    customer_id: uuid.UUID | None
    #: the customer's tier as customer-svc last announced it (routing and SLA policies match on it)
    customer_tier: str | None = None
    cc: list[str]
    followers: list[str]
    team_id: uuid.UUID | None
    assignee_id: str | None
    assignment_state: Literal["offered", "accepted"] | None
    follow_up_of: uuid.UUID | None
    merged_into: uuid.UUID | None
    message_count: int
    sla: SlaRead
    created_at: datetime
    updated_at: datetime
    solved_at: datetime | None
    closed_at: datetime | None
    version: int
    #: the customer's answer to the CSAT survey about this ticket; null until they answer
    csat: CsatRead | None = None
    #: when the ticket was deleted: only admins' and supervisors' incremental export shows a
    #: deleted ticket (every other read answers 404); null otherwise
    deleted_at: datetime | None = None


class DeletedTicketRead(BaseModel):
    """A ticket in the deleted tickets' list (``DELETE /v1/tickets/{id}``; restorable)."""

    id: uuid.UUID
    number: int
    subject: str
    #: the status a restore gives back
    previous_status: Status | None
    deleted_at: datetime
    #: who deleted it (``user:<id>``)
    deleted_by: str | None
    created_at: datetime


class DeletedTicketPage(BaseModel):
    items: list[DeletedTicketRead]
    next_cursor: str | None


class TicketPage(BaseModel):
    items: list[TicketRead]
    next_cursor: str | None


class AuditEntry(BaseModel):
    id: int
    actor: str
    action: str
    changes: dict[str, Any]
    at: datetime


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None


class LinkIn(StrictModel):
    other_id: uuid.UUID
    kind: Literal["related", "parent", "child"]


class LinkRead(BaseModel):
    other_id: uuid.UUID
    kind: str
    other_number: int
    other_subject: str
    other_status: str
    created_at: datetime


class MergeIn(StrictModel):
    target_id: uuid.UUID


class AssignIn(StrictModel):
    assignee_id: AgentId | None = None
    team_id: uuid.UUID | None = None
