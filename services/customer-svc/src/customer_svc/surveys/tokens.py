"""Survey answer tokens: the capability, in a link mailed to a customer, to answer one survey
(pure, no I/O).

The customer has no account, so the link itself must say which survey it answers and prove
that customer-svc made it. An HMAC over the survey id and an expiry (the pattern of ticket-svc's
visitor tokens) needs no table of issued tokens and cannot be stretched to another survey or a
later expiry without the key (``CUSTOMER_SURVEY_TOKEN_KEY``, known to customer-svc only). Single
use is the survey row's business (its status), not the token's.

Format (``helpdesk_common.capability``): ``hsv1.<base64url(survey id, 16 bytes)>.<expiry, Unix
seconds>.<base64url(HMAC-SHA256)>`` over ``"survey-token\\n<survey id>\\n<expiry>"``; the purpose
prefix keeps a MAC made with the same key for anything else from passing as one. Only URL-safe
characters, so it sits in a path as is.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from helpdesk_common import capability

PREFIX = "hsv1"
PURPOSE = "survey-token"
#: a genuine token is about 80 characters; anything much longer is refused before any work
MAX_TOKEN_LENGTH = 200
_b64 = capability.b64


@dataclass(frozen=True, slots=True)
class SurveyGrant:
    survey_id: uuid.UUID
    expires: int


class InvalidToken(Exception):
    """Malformed or badly signed: nobody can tell which survey it was for."""


class ExpiredToken(Exception):
    """Genuine but past its expiry: the survey is known, the answer is refused (410)."""

    def __init__(self, grant: SurveyGrant) -> None:
        super().__init__("expired")
        self.grant = grant


def mint(key: bytes, *, survey_id: uuid.UUID, expires: int) -> str:
    return capability.mint(key, prefix=PREFIX, purpose=PURPOSE, payload=survey_id.bytes, subject=(str(survey_id),),
                           expires=expires)


def verify(key: bytes, token: str, *, now: float) -> SurveyGrant:
    """The grant of a genuine, unexpired token; ``ExpiredToken`` for a genuine expired one (its
    signature checked first, so an expiry is never told about a forgery); ``InvalidToken`` else."""
    try:
        opened = capability.open_token(key, token, prefix=PREFIX, purpose=PURPOSE, max_length=MAX_TOKEN_LENGTH,
                                       subject_of=lambda payload: (str(uuid.UUID(bytes=payload)),))
    except capability.BadToken as exc:
        raise InvalidToken(str(exc)) from None
    grant = SurveyGrant(uuid.UUID(bytes=opened.payload), opened.expires)
    if opened.expires <= now:
        raise ExpiredToken(grant)
    return grant
