"""Standard Webhooks signatures (https://www.standardwebhooks.com/, docs/webhooks.md).

Chosen over a home-made scheme so that receivers verify with an off-the-shelf library in their
own language: the signature covers the message id and the timestamp as well as the body, so a
captured request cannot be replayed later (receivers refuse timestamps older than 5 minutes)
nor re-labelled as another message. Exactly:

- ``webhook-id``: the delivery's stable id (the same on every retry: the receiver's
  idempotency key);
- ``webhook-timestamp``: unix seconds of this attempt;
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, one per
  valid secret, separated by spaces (two while a rotated secret is still valid);
- a secret is ``whsec_`` + base64 of random bytes; the HMAC key is the decoded bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _random
import time
from collections.abc import Iterable, Mapping

SECRET_PREFIX = "whsec_"
#: Standard Webhooks asks for 24 to 64 random bytes
SECRET_BYTES = 32
#: receivers (and ``verify``) accept a timestamp this far from their clock, either way
TOLERANCE_S = 300


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(_random.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret. Raises ``ValueError`` for anything else."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
    except binascii.Error as exc:
        raise ValueError("a webhook secret is whsec_ and base64") from exc
    if not 24 <= len(key) <= 64:
        raise ValueError("a webhook secret holds 24 to 64 bytes")
    return key


def sign(secret: str, *, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature."""
    signed = b"%s.%d.%s" % (msg_id.encode(), timestamp, body)
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets: Iterable[str], *, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one signature per secret, space-separated."""
    values = [sign(secret, msg_id=msg_id, timestamp=timestamp, body=body) for secret in secrets]
    if not values:
        raise ValueError("no secret to sign with")
    return " ".join(values)


def webhook_headers(secrets: Iterable[str], *, msg_id: str, body: bytes, timestamp: int | None = None,
                    content_type: str = "application/cloudevents+json") -> dict[str, str]:
    """Every header of one attempt. ``timestamp`` defaults to now: each attempt is signed anew,
    so a retry hours later is not refused by the receiver as too old."""
    if any(c in msg_id for c in " ,\r\n"):
        raise ValueError("a webhook id has no spaces, commas or line breaks")
    at = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(at),
        "webhook-signature": signature_header(secrets, msg_id=msg_id, timestamp=at, body=body),
        "Content-Type": content_type,
    }


def verify(secret: str, *, headers: Mapping[str, str], body: bytes, now: float | None = None,
           tolerance_s: int = TOLERANCE_S) -> bool:
    """What a receiver does, for our own tests and tools: any ``v1`` signature in the header
    matches, and the timestamp is within ``tolerance_s`` of ``now``."""
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id, stamp, signatures = (lowered.get("webhook-id"), lowered.get("webhook-timestamp"),
                                 lowered.get("webhook-signature"))
    if not (msg_id and stamp and signatures) or not stamp.isdigit():
        return False
    timestamp = int(stamp)
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    expected = sign(secret, msg_id=msg_id, timestamp=timestamp, body=body).encode()
    return any(hmac.compare_digest(expected, candidate.encode()) for candidate in signatures.split(" ")
               if candidate.startswith("v1,"))
