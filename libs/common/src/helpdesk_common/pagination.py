"""Opaque keyset cursors for lists ordered by (created_at desc, id desc)."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import orjson

from .problems import Problem

MAX_LIMIT = 100
DEFAULT_LIMIT = 25


def encode_cursor(created_at: datetime, item_id: uuid.UUID) -> str:
    raw = orjson.dumps([created_at.isoformat(), str(item_id)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created_at, item_id = orjson.loads(base64.urlsafe_b64decode(padded))
        at = datetime.fromisoformat(created_at)
        # in UTC here: asyncpg converts when it sends the value, and a forged date that
        # overflows there (year 9999 at -14:00) must be a bad cursor, not a 500
        return (at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)), uuid.UUID(item_id)
    except Exception as exc:
        raise Problem(400, "invalid-cursor", "Invalid cursor", "The cursor is malformed.") from exc


def page(rows: list, limit: int) -> tuple[list, str | None]:
    """Rows fetched with ``limit + 1`` → (the page, the cursor of the next page or None).
    Rows are mappings with ``created_at`` and ``id`` (asyncpg records, dicts)."""
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1]["created_at"], rows[-1]["id"]) if more and rows else None


def encode_id_cursor(prefix: str, row_id: int) -> str:
    """An opaque cursor for a list ordered by a bigint id, newest first (audit logs): ``prefix``
    names the list, so one list's cursor is refused by another."""
    return base64.urlsafe_b64encode(f"{prefix}:{row_id}".encode()).decode().rstrip("=")


def decode_id_cursor(prefix: str, cursor: str) -> int:
    """``encode_id_cursor``'s id; 400 invalid-cursor for anything else."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        named, _, number = text.partition(":")
        value = int(number)
        if named != prefix or not 0 < value < 2**63:
            raise ValueError(cursor)
        return value
    except Exception as exc:
        raise Problem(400, "invalid-cursor", "Invalid cursor", "The cursor is malformed.") from exc
