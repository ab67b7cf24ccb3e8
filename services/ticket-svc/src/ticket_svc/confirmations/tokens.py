"""Confirmation tokens: the capability, in the link sent to a customer, to answer one
customer-confirmation step (pure, no I/O).

The customer has no account, so the link must say which ticket and which run of the step it
answers and prove that ticket-svc made it (``helpdesk_common.capability``, as survey and visitor
tokens). It expires with the step's deadline, so a link cannot outlive the question; a step
that already ended answers "already answered" whatever the token says, which makes the link
single-use in effect without a table of issued tokens. The key (``TICKET_CONFIRMATION_TOKEN_KEY``)
is ticket-svc's alone.

Format: ``hcf1.<base64url(ticket id + step id, 32 bytes)>.<expiry>.<base64url(HMAC-SHA256)>``
over ``"confirmation-token\\n<ticket id>\\n<step id>\\n<expiry>"``, about 105 characters.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from helpdesk_common import capability

PREFIX = "hcf1"
PURPOSE = "confirmation-token"
#: a genuine token is about 105 characters; anything much longer is refused before any work
MAX_TOKEN_LENGTH = 200


@dataclass(frozen=True, slots=True)
class ConfirmationGrant:
    ticket_id: uuid.UUID
    step_id: uuid.UUID
    expires: int


class InvalidToken(Exception):
    """Malformed or badly signed: nobody can tell which step it was for (404)."""


class ExpiredToken(Exception):
    """Genuine but past the step's deadline: the step is known, the answer is refused."""

    def __init__(self, grant: ConfirmationGrant) -> None:
        super().__init__("expired")
        self.grant = grant


def _ids(payload: bytes) -> tuple[uuid.UUID, uuid.UUID]:
    if len(payload) != 32:
        raise ValueError("not two ids")
    return uuid.UUID(bytes=payload[:16]), uuid.UUID(bytes=payload[16:])


def mint(key: bytes, *, ticket_id: uuid.UUID, step_id: uuid.UUID, expires: int) -> str:
    return capability.mint(key, prefix=PREFIX, purpose=PURPOSE, payload=ticket_id.bytes + step_id.bytes,
                           subject=(str(ticket_id), str(step_id)), expires=expires)


def verify(key: bytes, token: str, *, now: float) -> ConfirmationGrant:
    """The grant of a genuine, unexpired token; ``ExpiredToken`` for a genuine expired one (the
    signature checked first, so an expiry is never told about a forgery); ``InvalidToken`` else."""
    try:
        opened = capability.open_token(key, token, prefix=PREFIX, purpose=PURPOSE, max_length=MAX_TOKEN_LENGTH,
                                       subject_of=lambda payload: tuple(map(str, _ids(payload))))
    except capability.BadToken as exc:
        raise InvalidToken(str(exc)) from None
    ticket_id, step_id = _ids(opened.payload)
    grant = ConfirmationGrant(ticket_id, step_id, opened.expires)
    if opened.expires <= now:
        raise ExpiredToken(grant)
    return grant


def digest(token: str) -> str:
    """The id the gateway gives the ``visitor`` identity it forwards a link's request with (a
    digest, so the token itself never travels in the identity or shows up in a log of it)."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()[:32]
