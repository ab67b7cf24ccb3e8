"""Exports: rows to CSV and XLSX, formula-safe, and the incremental-export cursor.

Exports leave the system and are opened in spreadsheets, so every text cell that a spreadsheet
would run as a formula (it starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return —
OWASP's CSV-injection rule) is prefixed with a single quote; XLSX cells are also written with
the string type, so nothing a customer typed into a ticket ever becomes a formula.

CSV is a generator of byte chunks, so an endpoint can stream millions of rows with constant
memory; it is UTF-8 with a byte-order mark (Excel otherwise reads Chinese as mojibake) and
RFC 4180 quoting with CRLF line ends.

The incremental export pages on the keyset ``(updated_at, ticket_id)``: an offset would skip or
repeat tickets when rows change between pages, and ``updated_at`` alone is not unique (a bulk
update stamps thousands of tickets with one instant). The cursor carrying the keyset position is
opaque to clients and signed with HMAC-SHA256, so a forged or edited cursor is refused rather
than silently exporting from somewhere else.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import hmac
import io
import json
import math
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Generic, TypeVar

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
UTF8_BOM = b"\xef\xbb\xbf"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# --------------------------------------------------------------------------- cells


def escape_text(text: str) -> str:
    """``text`` made inert for a spreadsheet: a leading formula character gets a ``'`` before it."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def cell_value(value: Any) -> str | int | float | Decimal:
    """One value as it goes into a cell: numbers stay numbers, everything else becomes safe text.

    Only text is escaped: a number such as -5 is data, never a formula, and must stay summable.
    Instants are RFC 3339 in UTC (the API's convention), so exports from any zone agree.
    """
    if value is None:
        return ""
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "true" if value else "false"
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal):
        # NaN and infinities have no spreadsheet number (Excel calls such a file corrupt): text.
        finite = value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)
        return value if finite else escape_text(str(value))
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, list | tuple | set | frozenset):
        return escape_text(";".join(str(item) for item in value))
    return escape_text(str(value))


# --------------------------------------------------------------------------- CSV


def csv_chunks(
    header: Sequence[str], rows: Iterable[Sequence[Any]], *, rows_per_chunk: int = 1000
) -> Iterator[bytes]:
    """The CSV file as byte chunks: the BOM and header first, then ``rows_per_chunk`` rows each.

    Chunks are whole rows, so a client that stops mid-stream still has valid CSV up to there.
    """
    if rows_per_chunk < 1:
        raise ValueError("rows_per_chunk must be positive")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow([cell_value(name) for name in header])
    yield UTF8_BOM + _drain(buffer)
    pending = 0
    for row in rows:
        writer.writerow([cell_value(value) for value in row])
        pending += 1
        if pending == rows_per_chunk:
            yield _drain(buffer)
            pending = 0
    if pending:
        yield _drain(buffer)


def _drain(buffer: io.StringIO) -> bytes:
    """The buffer's text as UTF-8, emptying it for the next chunk."""
    data = buffer.getvalue().encode("utf-8")
    buffer.seek(0)
    buffer.truncate()
    return data


# --------------------------------------------------------------------------- XLSX


def _xlsx_cell(sheet: Any, value: Any) -> WriteOnlyCell:
    """A write-only cell; text is typed as a string so openpyxl never takes ``=...`` for a formula.

    Control characters that XML 1.0 cannot carry (openpyxl would raise) are dropped.
    """
    converted = cell_value(value)
    if isinstance(converted, str):
        cell = WriteOnlyCell(sheet, value=ILLEGAL_CHARACTERS_RE.sub("", converted))
        cell.data_type = "s"
        return cell
    return WriteOnlyCell(sheet, value=converted)


def xlsx_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]], *, sheet_title: str = "export") -> bytes:
    """The rows as an XLSX workbook (one sheet, header row first).

    openpyxl's write-only mode keeps memory flat in the row count; the file itself is a zip that
    can only be sent once complete, which is why large exports should prefer CSV.
    """
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=sheet_title)
    sheet.append([_xlsx_cell(sheet, name) for name in header])
    for row in rows:
        sheet.append([_xlsx_cell(sheet, value) for value in row])
    output = io.BytesIO()
    workbook.save(output)
    return output.getvalue()


# --------------------------------------------------------------------------- cursor


class InvalidCursor(ValueError):
    """A cursor that is malformed, forged, edited or signed with another key (the API answers 422)."""


@dataclass(frozen=True, slots=True, order=True)
class ExportPosition:
    """The keyset position of the last exported row: the export resumes strictly after it."""

    updated_at: datetime
    ticket_id: uuid.UUID


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(payload: str, key: bytes) -> str:
    return _b64(hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest())


def encode_signed(body: Mapping[str, Any], *, key: bytes) -> str:
    """A JSON object as an opaque, URL-safe token ``<base64url JSON>.<base64url HMAC-SHA256>``.

    The general form of the export cursor, for positions that are not ``(updated_at, ticket_id)``
    (ticket-svc's incremental export pages on a transaction id); the client can read nothing it
    could usefully change, and any change breaks the signature.
    """
    if not key:
        raise ValueError("the cursor key must not be empty")
    payload = _b64(json.dumps(body, separators=(",", ":")).encode("utf-8"))
    return f"{payload}.{_signature(payload, key)}"


def decode_signed(token: str, *, key: bytes) -> dict[str, Any]:
    """The object in a token from :func:`encode_signed`; :class:`InvalidCursor` for anything else.

    The signature is checked (in constant time) before the payload is parsed, so a forged
    payload never reaches the JSON parser.
    """
    if not isinstance(token, str) or len(token) > 512:
        raise InvalidCursor("the cursor is not one this service issued")
    payload, dot, signature = token.partition(".")
    if not dot or not payload or not payload.isascii() or not signature.isascii():
        raise InvalidCursor("the cursor is malformed")
    if not hmac.compare_digest(signature, _signature(payload, key)):
        raise InvalidCursor("the cursor's signature does not match")
    try:
        body = json.loads(_unb64(payload))
    except (binascii.Error, ValueError) as error:
        raise InvalidCursor("the cursor's content is malformed") from error
    if not isinstance(body, dict):
        raise InvalidCursor("the cursor's content is malformed")
    return body


def encode_cursor(position: ExportPosition, *, key: bytes) -> str:
    """``position`` as an opaque, URL-safe token ``<payload>.<HMAC-SHA256>``."""
    if not key:
        raise ValueError("the cursor key must not be empty")
    instant = position.updated_at
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("updated_at must be timezone-aware")
    body = {"u": instant.astimezone(UTC).isoformat(), "t": str(position.ticket_id)}
    return encode_signed(body, key=key)


def decode_cursor(token: str, *, key: bytes) -> ExportPosition:
    """The position in a token from :func:`encode_cursor`; anything else raises :class:`InvalidCursor`."""
    body = decode_signed(token, key=key)
    try:
        instant = datetime.fromisoformat(body["u"])
        ticket_id = uuid.UUID(body["t"])
    except (binascii.Error, ValueError, KeyError, TypeError) as error:
        raise InvalidCursor("the cursor's content is malformed") from error
    if instant.tzinfo is None:
        raise InvalidCursor("the cursor's content is malformed")
    return ExportPosition(updated_at=instant.astimezone(UTC), ticket_id=ticket_id)


# --------------------------------------------------------------------------- keyset paging

Row = TypeVar("Row")


def mapping_position(row: Mapping[str, Any]) -> ExportPosition:
    """The keyset position of a row given as a mapping with ``updated_at`` and ``ticket_id``."""
    return ExportPosition(updated_at=row["updated_at"], ticket_id=row["ticket_id"])


@dataclass(frozen=True, slots=True)
class Page(Generic[Row]):
    """One page of an export and where the next one starts.

    ``next_position`` is ``None`` when nothing more exists right now; ``resume_position`` is
    always where a later incremental run should continue (the last row's position, or the
    position the page started after when it is empty), so "export what changed since" works
    after the end is reached.
    """

    rows: list[Row]
    next_position: ExportPosition | None
    resume_position: ExportPosition | None


def next_page(
    rows: Iterable[Row],
    limit: int,
    *,
    after: ExportPosition | None = None,
    position: Callable[[Row], ExportPosition] = mapping_position,  # type: ignore[assignment]
) -> Page[Row]:
    """The first ``limit`` rows strictly after ``after`` in ``(updated_at, ticket_id)`` order.

    ``rows`` may be the whole candidate set or what a keyset query returned with ``LIMIT
    limit + 1`` (``WHERE (updated_at, ticket_id) > (:u, :t) ORDER BY updated_at, ticket_id``);
    either way the answer is the same: because the order is total (ticket ids are unique), a
    resumption from the returned position neither repeats nor skips a ticket, however many share
    one ``updated_at``. ``next_position`` is ``None`` only when no row beyond the page was seen.
    """
    if limit < 1:
        raise ValueError("limit must be positive")
    candidates = [row for row in rows if after is None or position(row) > after]
    candidates.sort(key=position)
    page = candidates[:limit]
    more = len(candidates) > limit
    last = position(page[-1]) if page else after
    return Page(rows=page, next_position=last if more else None, resume_position=last)
