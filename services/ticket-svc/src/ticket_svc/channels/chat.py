"""Our chat widget: one JSON message per delivery, on a conversation the widget keeps open.

``{"conversation_id", "message_id", "visitor": {"name", "email", "phone", "external_id"},
"text", "sent_at", "language"?, "attachments"?: [{"filename", "content_type",
"content_base64"}], "page_url"?}``. The message id dedupes; the conversation id threads every
message of a chat onto the conversation's open ticket.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from pydantic import AwareDatetime, Field, StringConstraints

from helpdesk_common.validation import StrictModel

from . import _json
from .inbound import InboundAttachment, InboundMessage, InvalidPayload, Sender

Id = Annotated[str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True)]


class Visitor(StrictModel):
    name: Annotated[str, StringConstraints(max_length=256, strip_whitespace=True)] | None = None
    email: Annotated[str, StringConstraints(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None
    phone: Annotated[str, StringConstraints(max_length=32, pattern=r"^\+?[0-9 ()\-.]{3,32}$")] | None = None
    external_id: Id | None = None


class ChatAttachment(StrictModel):
    filename: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    content_type: Annotated[str, StringConstraints(min_length=3, max_length=127)] = "application/octet-stream"
    content_base64: str


class ChatMessage(StrictModel):
    conversation_id: Id
    message_id: Id
    visitor: Visitor = Field(default_factory=Visitor)
    text: Annotated[str, StringConstraints(max_length=65_536)] = ""
    sent_at: AwareDatetime | None = None
    language: Annotated[str, StringConstraints(min_length=2, max_length=16)] | None = None
    attachments: Annotated[list[ChatAttachment], Field(max_length=10)] = Field(default_factory=list)
    page_url: Annotated[str, StringConstraints(max_length=2048, pattern=r"^https?://")] | None = None


def parse_chat(body: bytes) -> InboundMessage:
    msg = _json.load(body, ChatMessage)
    files = []
    for index, a in enumerate(msg.attachments):
        try:
            content = base64.b64decode(a.content_base64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidPayload("An attachment is not base64.", field_errors=[
                {"field": f"attachments.{index}.content_base64", "message": "not base64"}]) from exc
        files.append(InboundAttachment(filename=a.filename, content_type=a.content_type, content=content))
    if not msg.text.strip() and not files:
        raise InvalidPayload("A chat message needs text or an attachment.",
                             field_errors=[{"field": "text", "message": "is empty"}])
    v = msg.visitor
    return InboundMessage(
        channel="chat",
        external_id=f"{msg.conversation_id}:{msg.message_id}",
        sender=Sender(name=v.name, email=v.email.lower() if v.email else None, phone=v.phone,
                      external_id=f"chat:{v.external_id}" if v.external_id else None),
        body_text=msg.text.strip() or "[attachment]",
        conversation_key=f"chat:{msg.conversation_id}",
        attachments=tuple(files),
        language=msg.language,
        sent_at=msg.sent_at,
        metadata={"page_url": msg.page_url} if msg.page_url else {},
    )
