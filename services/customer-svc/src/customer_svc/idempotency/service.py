"""``Idempotency-Key`` on creating POSTs (DESIGN: every POST that creates something).

The key is claimed as the first statement of the request's transaction, scoped per caller and
bound to a SHA-256 of the route and body: a retry with the same body gets the stored answer
(``Idempotent-Replayed: true``), a reuse with another body is a 422 ``idempotency-key-reused``,
and a concurrent duplicate waits for the first to commit.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

import orjson
from fastapi import Header
from pydantic import BaseModel

from helpdesk_common.problems import Problem
from helpdesk_common.responses import dumps

from ..pii.codec import codec
from . import repository

IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$",
           description="Optional. A retry with the same key and body answers the first result once more; "
                       "the same key with another body is a 422."),
]


def request_hash(scope: str, body: BaseModel) -> str:
    canonical = orjson.dumps(body.model_dump(mode="json", exclude_unset=True), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(scope.encode() + b"\n" + canonical).hexdigest()


async def replay_or_claim(conn: Any, *, caller: str, key: str | None, scope: str, body: BaseModel) -> Any | None:
    """The stored answer of an earlier identical request, or None (go ahead: the key is ours)."""
    if key is None:
        return None
    digest = request_hash(scope, body)
    if await repository.claim(conn, caller=caller, key=key, request_hash=digest):
        return None
    prior = await repository.get(conn, caller=caller, key=key)
    if prior["request_hash"] != digest or prior["response"] is None:
        raise Problem(422, "idempotency-key-reused", "Idempotency key reused",
                      "This Idempotency-Key was used for a different request.")
    return opened(prior["response"])


#: the associated data of a stored answer's ciphertext
RESPONSE_CONTEXT = "idempotency_keys.response"


def opened(stored: Any) -> Any:
    """A stored answer: ``{"sealed": token}`` decrypted (answers carry names and identities:
    docs/security.md, "Personal data at rest"), anything else as it was stored before."""
    if isinstance(stored, dict) and set(stored) == {"sealed"}:
        return orjson.loads(codec().keyring.decrypt(stored["sealed"], context=RESPONSE_CONTEXT))
    return stored


async def remember(conn: Any, *, caller: str, key: str | None, response: Any) -> None:
    """Store the answer (JSON-ready: UUIDs and datetimes as orjson renders them), encrypted."""
    if key is not None:
        sealed = codec().keyring.encrypt(dumps(response).decode(), context=RESPONSE_CONTEXT)
        await repository.store(conn, caller=caller, key=key, response={"sealed": sealed})
