"""Survey answer tokens: the capability, in a link mailed to a customer, to answer one survey
(pure, no I/O).

The customer has no account, so the link itself must say which survey it answers and prove
that customer-svc made it. An HMAC over the survey id and an expiry (the pattern of ticket-svc's
visitor tokens) needs no table of issued tokens and cannot be stretched to another survey or a
later expiry without the key (``CUSTOMER_SURVEY_TOKEN_KEY``, known to customer-svc only). Single
use is the survey row's business (its status), not the token's.

Format: ``hsv1.<base64url(survey id, 16 bytes)>.<expiry, Unix seconds>.<base64url(HMAC-SHA256)>``
over ``"survey-token\\n<survey id>\\n<expiry>"``; the purpose prefix keeps a MAC made with the same
key for anything else from passing as one. Only URL-safe characters, so it sits in a path as is.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import uuid
from dataclasses import dataclass

PREFIX = "hsv1"
#: a genuine token is about 80 characters; anything much longer is refused before any work
MAX_TOKEN_LENGTH = 200


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


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, survey_id: uuid.UUID, expires: int) -> bytes:
    return hmac.new(key, f"survey-token\n{survey_id}\n{expires}".encode(), hashlib.sha256).digest()


def mint(key: bytes, *, survey_id: uuid.UUID, expires: int) -> str:
    return ".".join((PREFIX, _b64(survey_id.bytes), str(expires), _b64(_mac(key, survey_id, expires))))


def verify(key: bytes, token: str, *, now: float) -> SurveyGrant:
    """The grant of a genuine, unexpired token; ``ExpiredToken`` for a genuine expired one (its
    signature checked first, so an expiry is never told about a forgery); ``InvalidToken`` else."""
    if len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        raise InvalidToken("malformed")
    parts = token.split(".")
    # ASCII digits only: str.isdigit() is also true for "²", which int() refuses
    if len(parts) != 4 or parts[0] != PREFIX or not parts[2].isdigit() or len(parts[2]) > 12:
        raise InvalidToken("malformed")
    try:
        survey_id = uuid.UUID(bytes=_unb64(parts[1]))
        signature = _unb64(parts[3])
    except (binascii.Error, ValueError) as exc:
        raise InvalidToken("malformed") from exc
    expires = int(parts[2])
    if not hmac.compare_digest(_mac(key, survey_id, expires), signature):
        raise InvalidToken("bad signature")
    grant = SurveyGrant(survey_id, expires)
    if expires <= now:
        raise ExpiredToken(grant)
    return grant
