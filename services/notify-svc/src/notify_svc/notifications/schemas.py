"""Notification API shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictFloat, StrictInt, StrictStr, StringConstraints, field_validator

from helpdesk_common.text import VISIBLE_PATTERN
from helpdesk_common.validation import StrictModel

from .catalogue import AGENT_CHANNELS, KEYS, VARIABLES

KeyName = Literal[tuple(KEYS)]  # type: ignore[valid-type]
RecipientKind = Literal["customer", "assignee", "team_supervisors", "users", "approvers"]
AgentChannelName = Literal[AGENT_CHANNELS]  # type: ignore[valid-type]
#: a BCP 47-like tag: zh-CN, en, en-US, zh-Hant-TW
LANGUAGE_PATTERN = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$"
Language = Annotated[str, StringConstraints(pattern=LANGUAGE_PATTERN, max_length=35)]
#: template sources: bounded, so a render stays bounded (render.py)
#: a subject must show something (it is made one line, control characters removed, when rendered)
SubjectSource = Annotated[str, StringConstraints(min_length=1, max_length=1_000, pattern=VISIBLE_PATTERN)]
BodySource = Annotated[str, StringConstraints(min_length=1, max_length=32_000)]
HtmlSource = Annotated[str, StringConstraints(max_length=64_000)]
ChatId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]


class TemplateIn(StrictModel):
    """A template's three parts; ``body_html`` empty: text-only messages. Checked before saving
    (docs/notifications.md "Templates"): a part that would not render is a 422 naming it and
    the line."""

    subject: SubjectSource
    body_text: BodySource
    body_html: HtmlSource = ""


class TemplateRead(BaseModel):
    key: str
    language: str
    subject: str
    body_text: str
    body_html: str
    #: 0: the built-in, never edited (``If-Match: W/"0"`` to save over it only if still so)
    version: int
    #: false: the built-in template; true: an admin's (DELETE restores the built-in)
    customized: bool
    updated_at: datetime | None
    updated_by: str | None


class TemplateList(BaseModel):
    items: list[TemplateRead]
    next_cursor: str | None


#: a sample value: what the real variables hold (text, numbers, null)
Scalar = Annotated[StrictStr, StringConstraints(max_length=2_000)] | StrictInt | StrictFloat | None


def _fields(variable: str) -> object:
    names = sorted(VARIABLES[variable] or ())
    return Annotated[dict[Literal[tuple(names)], Scalar], Field(max_length=len(names))]  # type: ignore[valid-type]


class PreviewSample(StrictModel):
    """Values laid over the built-in sample (catalogue.SAMPLE); fields left out keep it."""

    ticket: _fields("ticket") = None  # type: ignore[valid-type]
    requester: _fields("requester") = None  # type: ignore[valid-type]
    agent: _fields("agent") = None  # type: ignore[valid-type]
    recipient: _fields("recipient") = None  # type: ignore[valid-type]
    team: _fields("team") = None  # type: ignore[valid-type]
    sla: _fields("sla") = None  # type: ignore[valid-type]
    step: _fields("step") = None  # type: ignore[valid-type]
    portal_url: Scalar = None
    reply_hint: Scalar = None
    language: Scalar = None


class PreviewIn(StrictModel):
    """Render without sending. Parts left out are taken from the template of ``key`` and
    ``language`` (stored or built-in); ``sample`` values replace those of the built-in sample."""

    key: KeyName
    language: Language
    subject: SubjectSource | None = None
    body_text: BodySource | None = None
    body_html: HtmlSource | None = None
    #: e.g. ``{"ticket": {"subject": "..."}, "requester": {"name": "..."}}``: only documented variables
    sample: PreviewSample = Field(default_factory=PreviewSample)


class PreviewRead(BaseModel):
    key: str
    language: str
    subject: str
    body_text: str
    body_html: str | None


class RulePatch(StrictModel):
    """Fields to change; absent fields stay. Customer notifications (ticket_received,
    ticket_solved) take ``customer`` only; agent notifications the other recipients."""

    enabled: bool = None  # type: ignore[assignment]
    recipients: Annotated[list[RecipientKind], Field(min_length=0, max_length=5)] = None  # type: ignore[assignment]
    #: the ``users`` recipient: gateway user ids
    user_ids: Annotated[list[uuid.UUID], Field(max_length=50)] = None  # type: ignore[assignment]
    agent_channel: AgentChannelName = None  # type: ignore[assignment]

    @field_validator("recipients", "user_ids")
    @classmethod
    def _distinct(cls, value: list[Any] | None) -> list[Any] | None:
        return None if value is None else list(dict.fromkeys(value))


class TeamOverrideIn(StrictModel):
    enabled: bool


class TeamOverrideRead(BaseModel):
    team_id: uuid.UUID
    enabled: bool
    #: reserved for per-brand overrides (brands do not exist yet): always null
    brand: str | None
    updated_at: datetime
    updated_by: str | None


class RuleRead(BaseModel):
    key: str
    event_type: str
    audience: Literal["customer", "agent"]
    description: str
    enabled: bool
    recipients: list[str]
    user_ids: list[str]
    agent_channel: str
    teams: list[TeamOverrideRead]
    version: int
    updated_at: datetime
    updated_by: str | None


class RuleList(BaseModel):
    items: list[RuleRead]
    next_cursor: str | None


class PreferenceIn(StrictModel):
    #: true: no notifications (acknowledgements, "solved") to this customer; replies still go
    opted_out: bool


class PreferenceRead(BaseModel):
    kind: Literal["customer", "email"]
    #: the customer id, or the lower-cased e-mail address
    value: str
    opted_out: bool
    version: int
    updated_at: datetime | None
    updated_by: str | None


class ContactIn(StrictModel):
    """An agent's ids on the chat channels (null: none). Replaces both."""

    wecom_userid: ChatId | None = None
    dingtalk_userid: ChatId | None = None


class ContactRead(BaseModel):
    user_id: uuid.UUID
    wecom_userid: str | None
    dingtalk_userid: str | None
    version: int
    updated_at: datetime | None
    updated_by: str | None


class LogEntry(BaseModel):
    event_id: uuid.UUID
    key: str
    #: ``customer``, ``user:<id>`` or ``email:<address>``
    recipient: str
    status: Literal["queued", "skipped"]
    #: why it was skipped (opted out, no address, deactivated ...)
    reason: str | None
    channel: str | None
    #: the queued delivery (``GET /v1/deliveries/{id}``); null when skipped
    delivery_id: uuid.UUID | None
    created_at: datetime
    #: ``notification_requested``: the trigger or automation whose action asked for it
    rule: str | None = None


class LogList(BaseModel):
    items: list[LogEntry]
    next_cursor: str | None
