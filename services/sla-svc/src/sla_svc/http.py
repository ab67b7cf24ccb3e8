"""Small HTTP helpers shared by the routers: versions as ETags, keyset cursors, roles."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import Header, Query, Request

from helpdesk_common import concurrency
from helpdesk_common.identity import Principal, require_user
from helpdesk_common.pagination import DEFAULT_LIMIT, MAX_LIMIT
from helpdesk_common.problems import Problem
from helpdesk_common.validation import INT32_MAX

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
#: an opaque keyset cursor as this API hands them out (a few dozen characters)
Cursor = Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=255,
           description="Repeat a create safely: the same key and body return the first answer."),
]
DEFAULT = DEFAULT_LIMIT
etag = concurrency.etag


def expected_versions(request: Request) -> list[int] | None:
    """The versions ``If-Match`` names (the shared rule, ``helpdesk_common.concurrency``): None
    when absent or ``*`` (last writer wins); an empty list (matching nothing) when unreadable.
    Writes compare them in their own ``WHERE version = ANY(...)``."""
    wanted = concurrency.wanted_versions(request.headers.get("if-match"))
    return None if wanted is None else sorted(wanted)


def encode_cursor(first: Any, item_id: uuid.UUID) -> str:
    value = first.isoformat() if hasattr(first, "isoformat") else first
    return base64.urlsafe_b64encode(orjson.dumps([value, str(item_id)])).decode().rstrip("=")


def _invalid_cursor() -> Problem:
    return Problem(400, "invalid-cursor", "Invalid cursor", "The cursor is malformed.")


def decode_cursor(cursor: str) -> tuple[Any, uuid.UUID]:
    try:
        first, item_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return first, uuid.UUID(item_id)
    except Exception as exc:
        raise _invalid_cursor() from exc


def decode_position_cursor(cursor: str) -> tuple[int, uuid.UUID]:
    """``(position, id)`` of a cursor over an ``integer`` position column. The cursor is client
    input: a position that is not an int (``int("abc")``, ``int(None)``) or beyond the column was
    a 500, and is a 400 like any other malformed cursor."""
    position, item_id = decode_cursor(cursor)
    if type(position) is not int or not 0 <= position <= INT32_MAX:
        raise _invalid_cursor()
    return position, item_id


def decode_time_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """``(created_at, id)`` of a cursor over a timestamptz column, in UTC: a forged date that
    overflows once converted (year 9999 at -14:00) is a bad cursor, not a 500 in the driver."""
    first, item_id = decode_cursor(cursor)
    try:
        at = datetime.fromisoformat(first)
        return (at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)), item_id
    except (TypeError, ValueError, OverflowError) as exc:
        raise _invalid_cursor() from exc


def require_reader(principal: Principal) -> None:
    """Users of any role read SLA data; channel keys do not (403)."""
    require_user(principal)


def require_admin(principal: Principal) -> None:
    require_user(principal, "admin")
