"""The chat widget: nothing to send, only to confirm the reply can be read.

A chat visitor reads agent replies from ticket-svc, which owns messages: the widget long-polls
``GET /v1/chat/conversations/{id}/messages`` with its visitor token, and a reply is there as
soon as its transaction commits (before notify-svc even hears of it). So this adapter makes no
network call. It answers ``sent`` when the reply names its conversation (the visitor can read
it there) and ``undeliverable`` when it names none (nowhere for a visitor to read it). "Sent"
means "available to the visitor", not "seen": the widget may be closed, and the visitor then
reads the reply when it reopens the conversation.
"""

from __future__ import annotations

from .base import OutboundMessage, SendResult


class ChatAdapter:
    channel = "chat"

    async def send(self, message: OutboundMessage) -> SendResult:
        key = message.route.get("conversation_key") if message.route else None
        if not isinstance(key, str) or not key.startswith("chat:") or len(key) <= len("chat:"):
            return SendResult("undeliverable", reason="no chat conversation to show this reply in")
        return SendResult("sent", provider_id=key)

    async def close(self) -> None:
        return None
