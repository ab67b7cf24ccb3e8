"""The one shape every channel's payload is normalised into before intake.

Parsers (e-mail, web forms, chat, WeChat / WeCom, DingTalk, phone) are pure functions from the
raw request to an ``InboundMessage`` (or ``Ignored`` for traffic that must create nothing, such
as auto-replies, bounces or WeChat subscribe events). Intake then dedupes on
``(channel, external_id)``, threads the message onto a ticket and routes it; no parser touches
the database.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: Channel kinds a message can arrive on.
CHANNELS = ("api", "web", "email", "chat", "wechat", "wecom", "dingtalk", "phone")

#: standard base64 with padding, what base64.b64decode(validate=True) takes (ECMA-262, for the
#: API document of every body that carries a file as base64)
BASE64_PATTERN = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


class InvalidPayload(ValueError):
    """The payload cannot be understood; intake answers 422 problem+json with this message."""

    def __init__(self, message: str, *, field_errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.field_errors = field_errors or []


@dataclass(frozen=True, slots=True)
class Sender:
    """Who wrote the message, as far as the channel tells us (any identity may be missing)."""

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    wechat_openid: str | None = None
    dingtalk_id: str | None = None
    external_id: str | None = None

    def identities(self) -> dict[str, str]:
        return {k: v for k, v in (("email", self.email), ("phone", self.phone),
                                  ("wechat_openid", self.wechat_openid), ("external_id", self.external_id
                                  or (f"dingtalk:{self.dingtalk_id}" if self.dingtalk_id else None))) if v}


@dataclass(frozen=True, slots=True)
class InboundAttachment:
    filename: str
    content_type: str
    content: bytes
    inline: bool = False
    content_id: str | None = None  # for inline images referenced as cid: in HTML

    @property
    def size(self) -> int:
        return len(self.content)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass(frozen=True, slots=True)
class InboundMessage:
    channel: str
    #: The channel's own id of this message (Message-ID, WeChat MsgId, DingTalk msgId, chat
    #: message id, call id); a second delivery with the same id has no second effect.
    external_id: str | None
    sender: Sender
    body_text: str
    subject: str | None = None
    body_html: str | None = None  # raw; intake sanitises before storing
    #: Channel message ids this message answers (e-mail In-Reply-To first, then References).
    thread_refs: tuple[str, ...] = ()
    #: A ticket number named by the message itself, e.g. "[#1234]" in an e-mail subject.
    ticket_number_hint: int | None = None
    #: A conversation the channel keeps open (chat session, WeChat openid, DingTalk
    #: conversationId): a message on it joins that conversation's newest unclosed ticket.
    conversation_key: str | None = None
    attachments: tuple[InboundAttachment, ...] = ()
    language: str | None = None
    sent_at: datetime | None = None
    #: Channel-specific facts kept on the message (call duration, recording URL, msg type...).
    metadata: dict[str, Any] = field(default_factory=dict)
    #: How to answer on this channel (``ticket.reply_requested``'s ``route``: WeChat openid and
    #: account, WeCom user, DingTalk session webhook...). Kept only in ``reply_routes``, never on
    #: the message: a DingTalk session webhook is a bearer URL no API answer may show.
    reply_route: dict[str, Any] | None = None


def _no_nul(value: Any) -> Any:
    """``value`` with U+0000 removed from every string in it (dict keys included)."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, dict):
        return {_no_nul(k): _no_nul(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_no_nul(v) for v in value)
    return value


def without_nul(message: InboundMessage) -> InboundMessage:
    """The message with NUL dropped from every text field, ids and addresses included.

    PostgreSQL text and jsonb cannot hold U+0000, and a third-party format (e-mail, where RFC
    5322 forbids it and broken mailers still send it, a DingTalk callback) cannot be sent back
    for correction: refusing would lose the customer's message, and storing it was a 500. The
    text reads the same without it; ids stay stable (the same delivery strips to the same id),
    so dedupe and threading keep working. Our own JSON contracts refuse NUL with a 422 before
    they get here."""
    sender = message.sender
    return dataclasses.replace(
        message,
        external_id=_no_nul(message.external_id),
        sender=Sender(**{f.name: _no_nul(getattr(sender, f.name)) for f in dataclasses.fields(sender)}),
        body_text=_no_nul(message.body_text), subject=_no_nul(message.subject), body_html=_no_nul(message.body_html),
        thread_refs=_no_nul(message.thread_refs), conversation_key=_no_nul(message.conversation_key),
        language=_no_nul(message.language), metadata=_no_nul(message.metadata),
        reply_route=_no_nul(message.reply_route),
        attachments=tuple(dataclasses.replace(a, filename=_no_nul(a.filename), content_type=_no_nul(a.content_type),
                                              content_id=_no_nul(a.content_id)) for a in message.attachments),
    )


@dataclass(frozen=True, slots=True)
class Ignored:
    """Traffic that must open no ticket and trigger no reply (auto-reply, bounce, bulk...)."""

    reason: str
