"""Signed capability tokens: a link's proof that the service made it, for whom and until when
(pure, no I/O).

Customers reach a few pages with no account (a survey, a resolution to confirm) and chat
visitors read a conversation with no key: the token in the URL is the only credential. An HMAC
over what it grants and an expiry needs no table of issued tokens and cannot be stretched to
another object or a later expiry without the key, which only the owning service holds. Each
kind of token keeps its own ``prefix`` (what the token says it is) and ``purpose`` (the first
line of the MAC'd text), so a MAC made with the same key for one purpose never passes as another.

Format: ``<prefix>.<base64url(payload)>.<expiry, Unix seconds>.<base64url(HMAC-SHA256)>`` over
``"<purpose>\\n<subject line>\\n...\\n<expiry>"``, where the subject lines are the payload's
text form (e.g. a UUID as ``str(uuid)``). Only URL-safe characters, so it sits in a path as is.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass


class BadToken(Exception):
    """Malformed or badly signed: nobody can tell what it was for."""


@dataclass(frozen=True, slots=True)
class Opened:
    """A genuine token's payload and expiry (whether it has expired is the caller's question:
    some answer an expired link differently from a forged one)."""

    payload: bytes
    expires: int


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, purpose: str, subject: Sequence[str], expires: int) -> bytes:
    return hmac.new(key, "\n".join((purpose, *subject, str(expires))).encode(), hashlib.sha256).digest()


def mint(key: bytes, *, prefix: str, purpose: str, payload: bytes, subject: Sequence[str], expires: int) -> str:
    return ".".join((prefix, b64(payload), str(expires), b64(_mac(key, purpose, subject, expires))))


def open_token(key: bytes, token: str, *, prefix: str, purpose: str,
               subject_of: Callable[[bytes], Sequence[str]], max_length: int) -> Opened:
    """The payload and expiry of a token this key signed, checked in constant time; ``BadToken``
    for anything else. ``subject_of`` turns the payload back into the MAC'd lines and raises
    ``ValueError`` (or ``UnicodeDecodeError``) when the payload cannot be one."""
    if len(token) > max_length or not token.isascii():
        raise BadToken("malformed")
    parts = token.split(".")
    # ASCII digits only: str.isdigit() is also true for "²", which int() refuses
    if len(parts) != 4 or parts[0] != prefix or not parts[2].isdigit() or len(parts[2]) > 12:
        raise BadToken("malformed")
    try:
        payload = unb64(parts[1])
        signature = unb64(parts[3])
        subject = subject_of(payload)
    except (binascii.Error, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise BadToken("malformed") from exc
    expires = int(parts[2])
    if not hmac.compare_digest(_mac(key, purpose, subject, expires), signature):
        raise BadToken("bad signature")
    return Opened(payload, expires)
