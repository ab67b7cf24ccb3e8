"""Where an incremental export stands, and what its ``start_time`` means (pure, no I/O).

The export pages on ``(change_xid, ticket id)``: the id of the transaction that last wrote the
ticket row, then the ticket id as tie-breaker (one transaction may write many tickets). The
cursor carries that position and the ``start_time`` filter of the export it continues, signed
(``helpdesk_common.exports.encode_signed``) so a client can neither move it nor widen it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from helpdesk_common.exports import InvalidCursor, decode_signed, encode_signed

#: sorts before every real ticket id: ``(x, NIL)`` means "every ticket written by transaction x or later"
NIL = uuid.UUID(int=0)
#: xid8 values are unsigned 64-bit; PostgreSQL's never reach 2^63 in practice, bigint-safe
MAX_XID = 2**63 - 1
#: what the cursor says it is, so a token signed for another purpose with the same key is refused
KIND = "tickets"
#: the oldest start_time taken (as Unix seconds 0); later than year 9999 is refused
MAX_EPOCH = 253_402_300_799


@dataclass(frozen=True, slots=True, order=True)
class ChangePosition:
    """Exclusive: the export continues with the rows strictly after it."""

    xid: int
    ticket_id: uuid.UUID


#: the beginning: every ticket (rows written before migration 0017 read transaction 0)
START = ChangePosition(0, NIL)


@dataclass(frozen=True, slots=True)
class ExportCursor:
    #: None for a new export from ``start_time``: where that time begins is the database's to find
    position: ChangePosition | None
    #: the export's lower bound on ``updated_at`` (from the first request), kept on every page
    start_time: datetime | None


def encode(cursor: ExportCursor, *, key: bytes) -> str:
    if cursor.position is None:
        raise ValueError("only a position is encoded")
    body = {
        "k": KIND,
        "x": str(cursor.position.xid),
        "t": str(cursor.position.ticket_id),
        "s": cursor.start_time.astimezone(UTC).isoformat() if cursor.start_time is not None else None,
    }
    return encode_signed(body, key=key)


def decode(token: str, *, key: bytes) -> ExportCursor:
    """The cursor in ``token``; :class:`InvalidCursor` for anything this service did not sign."""
    body = decode_signed(token, key=key)
    try:
        if body["k"] != KIND:
            raise ValueError("another kind of cursor")
        xid = int(body["x"])
        if not 0 <= xid <= MAX_XID:
            raise ValueError("transaction id out of range")
        ticket_id = uuid.UUID(body["t"])
        start = datetime.fromisoformat(body["s"]) if body["s"] is not None else None
        if start is not None and start.tzinfo is None:
            raise ValueError("naive start_time")
    except (KeyError, TypeError, ValueError) as error:
        raise InvalidCursor("the cursor's content is malformed") from error
    return ExportCursor(ChangePosition(xid, ticket_id), start.astimezone(UTC) if start else None)


def start_instant(value: int | datetime) -> datetime:
    """``start_time`` as an instant: Unix seconds (Zendesk's form, validated to
    ``0..MAX_EPOCH`` by the endpoint) or an RFC 3339 time with its offset, in UTC.

    A time in the future is taken as it is: the export then holds the changes made from that
    time on, which is what such a start asks for (Zendesk refuses it; nothing is gained by that).
    """
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("start_time needs its UTC offset")
        return value.astimezone(UTC)
    if not 0 <= value <= MAX_EPOCH:
        raise ValueError("Unix seconds out of range")
    return datetime.fromtimestamp(value, tz=UTC)


def next_cursor(*, after: ChangePosition, last_row: ChangePosition | None, more: bool,
                horizon: int) -> tuple[ChangePosition, bool]:
    """Where the next page starts, and whether this one reached the end of the stream.

    A full page continues after its last row. A page that was not full read every row below the
    horizon (every transaction older than the oldest one still running), so the next one may
    start at the horizon itself; rows written later carry a transaction id at or above it. The
    position never moves back, whatever the horizon says (a restored database could go back).
    """
    if more and last_row is not None:
        return last_row, False
    reached = ChangePosition(horizon, NIL)
    candidates = [after, reached] + ([last_row] if last_row is not None else [])
    return max(candidates), True
