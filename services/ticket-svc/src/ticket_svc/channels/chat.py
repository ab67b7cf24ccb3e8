"""Our chat widget: one JSON message per delivery, on a conversation the widget keeps open.

``{"conversation_id", "message_id", "visitor": {"name", "email", "phone", "external_id"},
"text", "sent_at", "language"?, "attachments"?: [{"filename", "content_type",
"content_base64"}], "page_url"?}``.

The widget is our own code, so the format is strict: an unknown field is a bug in the bridge
and is refused rather than silently dropped. The message id dedupes (scoped to its
conversation, because widgets number messages per conversation: ``m-1``, ``m-2``...); the
conversation id threads every message of a chat onto the conversation's open ticket.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any

from pydantic import AwareDatetime, ConfigDict, Field, StringConstraints, field_validator

from helpdesk_common.validation import EMAIL_PATTERN, NOT_BLANK, StrictModel

from .inbound import BASE64_PATTERN, InboundAttachment, InboundMessage, InvalidPayload, Sender
from .phone import PHONE_PATTERN, check_number, check_rfc3339, load, normalise_number

MAX_ATTACHMENTS = 10
#: Ids are opaque, but printable and without spaces: they end up in dedupe keys and logs.
Id = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[!-~]+$")]
_EMAIL = EMAIL_PATTERN
_LANGUAGE = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$"


class Visitor(StrictModel):
    """Whatever the visitor told the widget; every field may be null (anonymous chats)."""

    name: Annotated[str, StringConstraints(max_length=256, strip_whitespace=True)] | None = None
    email: Annotated[str, StringConstraints(max_length=254, strip_whitespace=True, pattern=_EMAIL)] | None = None
    phone: Annotated[str, StringConstraints(max_length=64), Field(json_schema_extra={"pattern": PHONE_PATTERN})] | None = None
    external_id: Id | None = None

    _phone = field_validator("phone")(lambda value: None if value is None else check_number(value))


class ChatAttachment(StrictModel):
    filename: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    content_type: Annotated[str, StringConstraints(min_length=3, max_length=127,
                                                   pattern=r"^[\w.+-]+/[\w.+-]+$")] = "application/octet-stream"
    content_base64: Annotated[str, Field(json_schema_extra={"pattern": BASE64_PATTERN, "contentEncoding": "base64"})]


class ChatMessage(StrictModel):
    # text, or at least one attachment
    model_config = ConfigDict(json_schema_extra={"anyOf": [
        {"properties": {"text": {"pattern": NOT_BLANK}}},
        {"required": ["attachments"], "properties": {"attachments": {"minItems": 1}}}]})

    conversation_id: Id
    message_id: Id
    visitor: Visitor
    text: Annotated[str, StringConstraints(max_length=65_536)]
    #: optional: intake falls back to the time of receipt (a visitor's clock is not to be trusted
    #: much anyway); when present it must be RFC 3339 with an offset
    sent_at: AwareDatetime | None = None
    language: Annotated[str, StringConstraints(max_length=35, pattern=_LANGUAGE)] | None = None
    attachments: Annotated[list[ChatAttachment], Field(max_length=MAX_ATTACHMENTS)] = Field(default_factory=list)
    page_url: Annotated[str, StringConstraints(max_length=2048, pattern=r"^https?://\S+$")] | None = None

    _sent_at = field_validator("sent_at", mode="before")(check_rfc3339)


def _decode(index: int, attachment: ChatAttachment) -> InboundAttachment:
    try:
        content = base64.b64decode(attachment.content_base64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidPayload("An attachment is not base64.", field_errors=[
            {"field": f"attachments.{index}.content_base64", "message": "is not base64"}]) from exc
    # a widget running on Windows may send a full path; only the last component is a name
    name = re.split(r"[\\/]", attachment.filename)[-1].strip() or "attachment"
    return InboundAttachment(filename=name, content_type=attachment.content_type.lower(), content=content)


def _sender(visitor: Visitor) -> Sender:
    """E-mail lower-cased and phone normalised, so the visitor matches the same customer who
    wrote by e-mail or called; a widget-only visitor is known by the widget's cookie id."""
    return Sender(
        name=visitor.name or None,
        email=visitor.email.lower() if visitor.email else None,
        phone=normalise_number(visitor.phone) if visitor.phone else None,
        external_id=f"chat:{visitor.external_id}" if visitor.external_id else None,
    )


def parse_chat(body: bytes) -> InboundMessage:
    """One widget message -> one customer message on the conversation ``chat:<id>``."""
    msg = load(body, ChatMessage)
    files = [_decode(index, a) for index, a in enumerate(msg.attachments)]
    text = msg.text.strip()
    if not text and not files:
        raise InvalidPayload("A chat message needs text or an attachment.",
                             field_errors=[{"field": "text", "message": "is empty and there is no attachment"}])
    metadata: dict[str, Any] = {"message_id": msg.message_id}
    if msg.page_url:
        metadata["page_url"] = msg.page_url
    return InboundMessage(
        channel="chat",
        external_id=f"{msg.conversation_id}:{msg.message_id}",
        sender=_sender(msg.visitor),
        body_text=text or "[attachment]",
        conversation_key=f"chat:{msg.conversation_id}",
        attachments=tuple(files),
        language=msg.language,
        sent_at=msg.sent_at,
        metadata=metadata,
    )
