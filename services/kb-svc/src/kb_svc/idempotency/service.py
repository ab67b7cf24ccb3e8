"""The key is claimed as the first statement of the request's transaction, scoped per caller and
bound to a SHA-256 of the route and body: a retry with the same body gets the stored answer
(``Idempotent-Replayed: true``), a reuse with another body is a 422, and a concurrent duplicate
waits for the first to commit."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

import orjson
from fastapi import Header
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from helpdesk_common.problems import Problem
from helpdesk_common.responses import dumps

from . import repository

IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$",
           description="Repeat a create safely: the same key and body return the first answer."),
]


def request_hash(scope: str, body: BaseModel | bytes) -> str:
    canonical = body if isinstance(body, bytes) else orjson.dumps(body.model_dump(mode="json"),
                                                                  option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(scope.encode() + b"\n" + canonical).hexdigest()


async def replay_or_claim(conn: AsyncConnection, *, caller: str, key: str | None, scope: str,
                          body: BaseModel | bytes) -> Any | None:
    """The stored answer of an earlier identical request, or None (go ahead: the key is ours)."""
    if key is None:
        return None
    digest = request_hash(scope, body)
    if await repository.claim(conn, caller=caller, key=key, request_hash=digest):
        return None
    prior = await repository.get(conn, caller=caller, key=key)
    if prior.request_hash != digest or prior.response is None:
        raise Problem(422, "idempotency-key-reused", "Idempotency key reused",
                      "This Idempotency-Key was used for a different request.")
    return prior.response


async def remember(conn: AsyncConnection, *, caller: str, key: str | None, response: Any) -> None:
    if key is not None:
        await repository.store(conn, caller=caller, key=key, response_json=dumps(response).decode())
