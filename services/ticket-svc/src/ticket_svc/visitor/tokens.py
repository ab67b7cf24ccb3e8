"""Visitor tokens: the chat widget's capability to read one conversation (pure, no I/O).

A chat visitor has no account and no API key: the widget's backend (holding the chat
channel's key) is told a token when the visitor's message is taken, or asks for one, and the
visitor's browser presents it to ``GET /v1/chat/conversations/{conversation_id}/messages``.
ticket-svc mints and alone verifies it, so it is an HMAC over what it grants rather than a
random string kept in a table: no lookup per long-poll, no table to prune, and a token cannot
be stretched to another conversation or a later expiry without the key
(``TICKET_VISITOR_TOKEN_KEY``, known to ticket-svc only).

Format: ``hvt1.<base64url(conversation key)>.<expiry, Unix seconds>.<base64url(HMAC-SHA256)>``
over ``"visitor-token\\n<conversation key>\\n<expiry>"``; the purpose prefix keeps a MAC made
for anything else with the same key (none today) from ever passing as one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

PREFIX = "hvt1"
#: a conversation key is ``chat:`` + 1-128 printable ASCII characters (channels/chat.py)
MAX_TOKEN_LENGTH = 512


@dataclass(frozen=True, slots=True)
class VisitorGrant:
    conversation_key: str
    expires: int


class InvalidToken(Exception):
    """Malformed, badly signed or expired (the answer does not say which: 401 for all)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, conversation_key: str, expires: int) -> bytes:
    return hmac.new(key, f"visitor-token\n{conversation_key}\n{expires}".encode(), hashlib.sha256).digest()


def mint(key: bytes, *, conversation_key: str, expires: int) -> str:
    return ".".join((PREFIX, _b64(conversation_key.encode()), str(expires),
                     _b64(_mac(key, conversation_key, expires))))


def verify(key: bytes, token: str, *, now: float) -> VisitorGrant:
    """The grant of a genuine, unexpired token; ``InvalidToken`` otherwise."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken("too long")
    parts = token.split(".")
    # ASCII digits only: str.isdigit() is also true for "²", which int() refuses
    if len(parts) != 4 or parts[0] != PREFIX or not (parts[2].isascii() and parts[2].isdigit()) or len(parts[2]) > 12:
        raise InvalidToken("malformed")
    try:
        conversation_key = _unb64(parts[1]).decode()
        signature = _unb64(parts[3])
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidToken("malformed") from exc
    expires = int(parts[2])
    if not hmac.compare_digest(_mac(key, conversation_key, expires), signature):
        raise InvalidToken("bad signature")
    if expires <= now:
        raise InvalidToken("expired")
    return VisitorGrant(conversation_key, expires)
