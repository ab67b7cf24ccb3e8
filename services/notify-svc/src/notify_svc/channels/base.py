"""What every outbound channel adapter takes and answers.

The delivery engine (``deliveries/``) owns retries, backoff, dead letters and records; an adapter
only tries once and says how it went. It never raises for a provider's answer: it classifies it,
because the engine's next step depends on that class, not on the exception type:

- ``sent``: the provider accepted the message (``provider_id`` when it names one);
- ``transient``: worth retrying later (timeouts, 5xx, rate limits, an expired token that a
  refresh did not fix this time); ``retry_after`` seconds when the provider says;
- ``permanent``: retrying cannot help (a malformed request, a refused recipient, bad
  credentials): the delivery fails without further attempts;
- ``undeliverable``: the recipient cannot be reached on this channel now, and the reason says
  why (WeChat's 48-hour customer-service window, no address at all): shown to the agent as
  such, never retried.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Outcome = Literal["sent", "transient", "permanent", "undeliverable"]


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One message to one recipient on one channel.

    ``delivery_id`` is stable across attempts and carried to the receiver where the channel has
    a place for it (the e-mail ``Message-ID`` is ``email_message_id``; a webhook's
    ``webhook-id``), so a resend after a crash is recognisable as the same message.
    ``route`` holds the channel's own addressing, as ticket-svc recorded it from the customer's
    messages (docs/channels/outbound.md): e-mail ``to``/``cc``/``from``, WeChat ``openid`` and
    ``app_id``, WeCom ``external_userid`` and ``open_kfid``, DingTalk ``session_webhook`` (+
    ``session_webhook_expires_at``), ``conversation_id``, ``sender_staff_id``, ``robot_code``.
    """

    delivery_id: uuid.UUID
    channel: str
    route: Mapping[str, Any]
    body_text: str
    body_html: str | None = None
    subject: str | None = None
    language: str | None = None
    attachments: Sequence[Attachment] = ()
    #: e-mail threading: our Message-ID, and the customer's ids we answer
    email_message_id: str | None = None
    in_reply_to: str | None = None
    references: Sequence[str] = ()
    #: a notification (not a reply): e-mail adds ``Auto-Submitted: auto-generated``
    automatic: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Outcome
    reason: str | None = None
    provider_id: str | None = None
    retry_after: float | None = None
    #: the provider's own status or error code, for the attempt log ("45015", "550", "503")
    code: str | None = None


class Adapter(Protocol):
    """One outbound channel. ``send`` tries once, within its own timeouts, and classifies."""

    channel: str

    async def send(self, message: OutboundMessage) -> SendResult: ...

    async def close(self) -> None: ...
