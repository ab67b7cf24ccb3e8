"""Small HTTP helpers shared by the routers: versions as ETags, keyset cursors, roles."""

from __future__ import annotations

import base64
import re
import uuid
from typing import Annotated, Any

import orjson
from fastapi import Header, Query, Request

from helpdesk_common.identity import Principal, require_user
from helpdesk_common.pagination import DEFAULT_LIMIT, MAX_LIMIT
from helpdesk_common.problems import Problem

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=255,
           description="Repeat a create safely: the same key and body return the first answer."),
]
DEFAULT = DEFAULT_LIMIT
_ETAG = re.compile(r'^\s*(?:W/)?"?(\d{1,9})"?\s*$')


def etag(version: int) -> str:
    return f'W/"{version}"'


def expected_version(request: Request) -> int | None:
    """The version in ``If-Match`` (None when absent: last writer wins); 412 when unreadable."""
    raw = request.headers.get("if-match")
    if raw is None or raw.strip() == "*":
        return None
    match = _ETAG.match(raw)
    if not match:
        raise Problem(412, "precondition-failed", "Precondition failed", "If-Match does not name a version.")
    return int(match.group(1))


def encode_cursor(first: Any, item_id: uuid.UUID) -> str:
    value = first.isoformat() if hasattr(first, "isoformat") else first
    return base64.urlsafe_b64encode(orjson.dumps([value, str(item_id)])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[Any, uuid.UUID]:
    try:
        first, item_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return first, uuid.UUID(item_id)
    except Exception as exc:
        raise Problem(400, "invalid-cursor", "Invalid cursor", "The cursor is malformed.") from exc


def require_reader(principal: Principal) -> None:
    """Users of any role read SLA data; channel keys do not (403)."""
    require_user(principal)


def require_admin(principal: Principal) -> None:
    require_user(principal, "admin")
