"""Visitor tokens: the chat widget's capability to read one conversation (pure, no I/O).

A chat visitor has no account and no API key: the widget's backend (holding the chat
channel's key) is told a token when the visitor's message is taken, or asks for one, and the
visitor's browser presents it to ``GET /v1/chat/conversations/{conversation_id}/messages``.
ticket-svc mints and alone verifies it, so it is an HMAC over what it grants rather than a
random string kept in a table: no lookup per long-poll, no table to prune, and a token cannot
be stretched to another conversation or a later expiry without the key
(``TICKET_VISITOR_TOKEN_KEY``, known to ticket-svc only).

Format (``helpdesk_common.capability``): ``hvt1.<base64url(conversation key)>.<expiry, Unix
seconds>.<base64url(HMAC-SHA256)>``
over ``"visitor-token\\n<conversation key>\\n<expiry>"``; the purpose prefix keeps a MAC made
for anything else with the same key (none today) from ever passing as one.
"""

from __future__ import annotations

from dataclasses import dataclass

from helpdesk_common import capability

PREFIX = "hvt1"
PURPOSE = "visitor-token"
#: a conversation key is ``chat:`` + 1-128 printable ASCII characters (channels/chat.py)
MAX_TOKEN_LENGTH = 512
_b64 = capability.b64


@dataclass(frozen=True, slots=True)
class VisitorGrant:
    conversation_key: str
    expires: int


class InvalidToken(Exception):
    """Malformed, badly signed or expired (the answer does not say which: 401 for all)."""


def mint(key: bytes, *, conversation_key: str, expires: int) -> str:
    return capability.mint(key, prefix=PREFIX, purpose=PURPOSE, payload=conversation_key.encode(),
                           subject=(conversation_key,), expires=expires)


def verify(key: bytes, token: str, *, now: float) -> VisitorGrant:
    """The grant of a genuine, unexpired token; ``InvalidToken`` otherwise."""
    try:
        opened = capability.open_token(key, token, prefix=PREFIX, purpose=PURPOSE, max_length=MAX_TOKEN_LENGTH,
                                       subject_of=lambda payload: (payload.decode(),))
    except capability.BadToken as exc:
        raise InvalidToken(str(exc)) from None
    if opened.expires <= now:
        raise InvalidToken("expired")
    return VisitorGrant(opened.payload.decode(), opened.expires)
