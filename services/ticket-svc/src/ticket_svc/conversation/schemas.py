from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from helpdesk_common.validation import StrictModel

from ..channels.inbound import BASE64_PATTERN
from .attachments import MAX_ATTACHMENT_BYTES, REFUSED_EXTENSIONS, REFUSED_TYPES


def _any_case(text: str) -> str:
    """``text`` as an ECMA-262 pattern matching it in any letter case (``exe`` -> ``[eE][xX][eE]``)."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in text)


#: what attachments.check refuses as executable, stated for the document
_EXECUTABLE_NAME = r"\.(?:" + "|".join(_any_case(e[1:]) for e in sorted(REFUSED_EXTENSIONS)) + r")\s*$"
_EXECUTABLE_TYPE = r"^\s*(?:" + "|".join(_any_case(t) for t in sorted(REFUSED_TYPES)) + r")\s*(?:;|$)"


class AttachmentIn(StrictModel):
    filename: Annotated[str, StringConstraints(min_length=1, max_length=255),
                        Field(json_schema_extra={"not": {"pattern": _EXECUTABLE_NAME},
                                                 "description": "executables and scripts are refused"})]
    content_type: Annotated[str, StringConstraints(min_length=3, max_length=127),
                            Field(json_schema_extra={"not": {"pattern": _EXECUTABLE_TYPE}})] = "application/octet-stream"
    content_base64: Annotated[str, StringConstraints(max_length=36 * 1024 * 1024),
                              Field(json_schema_extra={"pattern": BASE64_PATTERN, "contentEncoding": "base64",
                                                       "maxLength": 4 * -(-MAX_ATTACHMENT_BYTES // 3)})]


class MessageIn(StrictModel):
    body: Annotated[str, StringConstraints(min_length=1, max_length=65_536)]
    #: a reply the customer sees, or an internal note (agents only)
    public: bool = True
    html: Annotated[str, StringConstraints(max_length=1_000_000)] | None = None
    attachments: Annotated[list[AttachmentIn], Field(max_length=20)] = Field(default_factory=list)


class AttachmentRead(BaseModel):
    id: str
    filename: str
    content_type: str
    size: int
    sha256: str
    storage_key: str
    inline: bool
    content_id: str | None


class MessageRead(BaseModel):
    id: uuid.UUID
    ticket_id: uuid.UUID
    author_kind: Literal["customer", "agent", "system"]
    author_id: str | None
    public: bool
    body_text: str
    body_html: str | None
    channel: str | None
    attachments: list[AttachmentRead]
    created_at: datetime
    #: public agent replies only (null otherwise): what notify-svc did with it
    delivery_status: Literal["queued", "sent", "failed", "undeliverable"] | None = None
    #: why it failed or cannot be delivered; never shown to channel keys (the customer's side)
    delivery_reason: str | None = None
    delivery_attempts: int | None = None
    delivery_updated_at: datetime | None = None


class MessageCreated(MessageRead):
    #: the ticket the message landed on (a follow-up when the ticket was closed)
    follow_up_ticket_id: uuid.UUID | None = None


class MessagePage(BaseModel):
    items: list[MessageRead]
    next_cursor: str | None
