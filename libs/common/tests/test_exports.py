"""Exports: CSV (BOM, RFC 4180, streaming), XLSX (strings, never formulas), formula escaping,
the signed cursor, and keyset paging that yields every ticket exactly once across resumptions."""

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from helpdesk_common.exports import (
    UTF8_BOM,
    ExportPosition,
    InvalidCursor,
    cell_value,
    csv_chunks,
    decode_cursor,
    encode_cursor,
    escape_text,
    next_page,
    xlsx_bytes,
)

KEY = b"test-export-key"
DANGEROUS = ["=1+2", "+33 1 23", "-2+3", "@SUM(A1)", "\tcmd", "\r\nx", '=HYPERLINK("http://evil","x")']


@pytest.mark.parametrize("text", DANGEROUS)
def test_each_formula_start_is_escaped(text):
    assert escape_text(text) == "'" + text
    assert cell_value(text) == "'" + text


@pytest.mark.parametrize("text", ["hello", "工单 = 已解决", " =x", "'=already", "", "1-2"])
def test_harmless_text_is_untouched(text):
    assert escape_text(text) == text


def test_cell_values():
    assert cell_value(None) == ""
    assert cell_value(-5) == -5 and cell_value(-1.5) == -1.5 and cell_value(Decimal("-2.50")) == Decimal("-2.50")
    assert cell_value(True) == "true"
    assert cell_value(float("nan")) == "nan" and cell_value(float("-inf")) == "'-inf"
    assert cell_value(Decimal("NaN")) == "NaN"
    assert cell_value(datetime(2026, 3, 1, 8, tzinfo=timezone(timedelta(hours=8)))) == "2026-03-01T00:00:00Z"
    assert cell_value(["vip", "=bad"]) == "vip;=bad"
    assert cell_value(["=bad", "vip"]) == "'=bad;vip"
    ticket = uuid.UUID(int=7)
    assert cell_value(ticket) == str(ticket)


def read_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(UTF8_BOM)
    return list(csv.reader(io.StringIO(data[len(UTF8_BOM):].decode("utf-8"), newline="")))


def test_csv_bom_quoting_and_crlf():
    rows = [
        ["t1", "退款 申请, 加急", 'say "hi"', "line1\nline2", -3],
        ["t2", "=cmd|' /C calc'!A0", None, "", 0],
    ]
    data = b"".join(csv_chunks(["id", "subject", "quote", "body", "n"], rows))
    assert data.startswith(UTF8_BOM + b"id,subject,quote,body,n\r\n")
    assert '"退款 申请, 加急","say ""hi""","line1\nline2",-3\r\n'.encode() in data
    assert read_csv(data) == [
        ["id", "subject", "quote", "body", "n"],
        ["t1", "退款 申请, 加急", 'say "hi"', "line1\nline2", "-3"],
        ["t2", "'=cmd|' /C calc'!A0", "", "", "0"],
    ]


@pytest.mark.parametrize("text", DANGEROUS)
def test_csv_escapes_each_formula_start(text):
    data = b"".join(csv_chunks(["v"], [[text]]))
    assert read_csv(data)[1] == ["'" + text]


def test_csv_streams_whole_rows_in_chunks():
    rows = ([str(number), "x"] for number in range(2500))
    chunks = list(csv_chunks(["n", "x"], rows, rows_per_chunk=1000))
    assert len(chunks) == 4  # header, 1000, 1000, 500
    assert chunks[0] == UTF8_BOM + b"n,x\r\n"
    assert all(chunk.endswith(b"\r\n") for chunk in chunks)
    assert sum(chunk.count(b"\r\n") for chunk in chunks[1:]) == 2500
    assert list(csv_chunks(["n"], [])) == [UTF8_BOM + b"n\r\n"]
    with pytest.raises(ValueError):
        list(csv_chunks(["n"], [], rows_per_chunk=0))


def test_csv_is_lazy():
    def endless():
        number = 0
        while True:
            yield [number]
            number += 1

    stream = csv_chunks(["n"], endless(), rows_per_chunk=10)
    next(stream)
    assert next(stream).count(b"\r\n") == 10


def test_xlsx_strings_never_formulas():
    rows = [[text, -4, "客户 中文"] for text in DANGEROUS] + [["bell\x07char", 1.5, None], ["x", float("inf"), 0]]
    workbook = load_workbook(io.BytesIO(xlsx_bytes(["value", "number", "名称"], rows)))
    sheet = workbook.active
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert values[0] == ["value", "number", "名称"]
    for text, row in zip(DANGEROUS, sheet.iter_rows(min_row=2)):
        assert row[0].data_type == "s"
        assert row[0].value == "'" + text.replace("\r\n", "\n")  # XML reads CRLF back as LF
        assert row[1].value == -4 and row[1].data_type == "n"
    assert values[-2] == ["bellchar", 1.5, None]
    assert values[-1] == ["x", "inf", 0]
    assert not any(cell.data_type == "f" for row in sheet.iter_rows() for cell in row)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=30))
def test_no_text_cell_starts_like_a_formula(text):
    escaped = cell_value(text)
    assert not escaped.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert escaped in (text, "'" + text)


# --------------------------------------------------------------------------- cursor


def test_cursor_round_trip_normalises_to_utc():
    position = ExportPosition(datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=timezone(timedelta(hours=8))), uuid.uuid4())
    token = encode_cursor(position, key=KEY)
    assert token.isascii() and "=" not in token and "/" not in token and "+" not in token
    decoded = decode_cursor(token, key=KEY)
    assert decoded == position
    assert decoded.updated_at.tzinfo == UTC


def test_cursor_tampering_and_garbage_are_refused():
    token = encode_cursor(ExportPosition(datetime(2026, 1, 1, tzinfo=UTC), uuid.UUID(int=1)), key=KEY)
    payload, signature = token.split(".")
    forged_body = encode_cursor(ExportPosition(datetime(2020, 1, 1, tzinfo=UTC), uuid.UUID(int=1)), key=KEY)
    bad = [
        "",
        "abc",
        ".",
        token + "x",
        payload + "." + signature[:-1] + ("A" if signature[-1] != "A" else "B"),
        forged_body.split(".")[0] + "." + signature,
        "é." + signature,
        "x" * 5000,
        token.replace(".", ""),
    ]
    for value in bad:
        with pytest.raises(InvalidCursor):
            decode_cursor(value, key=KEY)
    with pytest.raises(InvalidCursor):
        decode_cursor(token, key=b"another key")


def test_cursor_signed_garbage_payload_is_refused():
    from helpdesk_common.exports import _b64, _signature

    for body in [b"not json", b"{}", b'{"u":"yesterday","t":"x"}', b'{"u":"2026-01-01T00:00:00","t":"00000000-0000-0000-0000-000000000001"}', b"[]"]:
        payload = _b64(body)
        with pytest.raises(InvalidCursor):
            decode_cursor(payload + "." + _signature(payload, KEY), key=KEY)


def test_cursor_refuses_bad_inputs_to_encode():
    with pytest.raises(ValueError):
        encode_cursor(ExportPosition(datetime(2026, 1, 1), uuid.UUID(int=1)), key=KEY)
    with pytest.raises(ValueError):
        encode_cursor(ExportPosition(datetime(2026, 1, 1, tzinfo=UTC), uuid.UUID(int=1)), key=b"")


# --------------------------------------------------------------------------- keyset paging


def test_next_page_with_ties():
    instant = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [{"updated_at": instant, "ticket_id": uuid.UUID(int=number)} for number in (3, 1, 2, 5, 4)]
    first = next_page(rows, 2)
    assert [row["ticket_id"].int for row in first.rows] == [1, 2]
    second = next_page(rows, 2, after=first.next_position)
    assert [row["ticket_id"].int for row in second.rows] == [3, 4]
    third = next_page(rows, 2, after=second.next_position)
    assert [row["ticket_id"].int for row in third.rows] == [5]
    assert third.next_position is None and third.resume_position == ExportPosition(instant, uuid.UUID(int=5))
    empty = next_page(rows, 2, after=third.resume_position)
    assert empty.rows == [] and empty.next_position is None and empty.resume_position == third.resume_position
    with pytest.raises(ValueError):
        next_page(rows, 0)


def test_next_page_exact_fit_reports_no_more():
    rows = [{"updated_at": datetime(2026, 1, 1, tzinfo=UTC), "ticket_id": uuid.UUID(int=n)} for n in range(4)]
    assert next_page(rows, 4).next_position is None


def row_sets(min_size: int = 0, max_size: int = 200):
    """Rows over few distinct instants, so many tickets share one ``updated_at``."""
    return st.lists(
        st.tuples(st.integers(min_value=0, max_value=5), st.uuids()),
        min_size=min_size,
        max_size=max_size,
        unique_by=lambda pair: pair[1],
    )


@st.composite
def limit_and_rows(draw):
    """A page size and enough rows for at least twenty resumptions at that size."""
    limit = draw(st.integers(min_value=1, max_value=8))
    return limit, draw(row_sets(min_size=21 * limit, max_size=21 * limit + 40))


@settings(max_examples=60, deadline=None)
@given(case=limit_and_rows(), shuffle=st.randoms(use_true_random=False))
def test_twenty_resumptions_yield_every_ticket_exactly_once(case, shuffle):
    limit, pairs = case
    base = datetime(2026, 5, 1, tzinfo=UTC)
    rows = [{"updated_at": base + timedelta(seconds=offset), "ticket_id": ticket} for offset, ticket in pairs]
    exported: list[uuid.UUID] = []
    token: str | None = None
    resumptions = 0
    while True:
        after = decode_cursor(token, key=KEY) if token else None  # each cursor went through a client
        shuffle.shuffle(rows)  # the store may hand back rows in any order
        page = next_page(rows, limit, after=after)
        assert len(page.rows) <= limit
        exported.extend(row["ticket_id"] for row in page.rows)
        if page.next_position is None:
            break
        token = encode_cursor(page.next_position, key=KEY)
        resumptions += 1
    assert resumptions >= 20
    ordered = [ticket for _, ticket in sorted(pairs)]
    assert exported == ordered  # every ticket, once, in keyset order


@settings(max_examples=100, deadline=None)
@given(pairs=row_sets(min_size=40))
def test_twenty_resumptions_over_ties_cover_everything(pairs):
    limit = max(1, -(-len(pairs) // 20))  # enough for twenty pages at most, and at least twenty-ish
    base = datetime(2026, 5, 1, tzinfo=UTC)
    rows = [{"updated_at": base + timedelta(seconds=offset), "ticket_id": ticket} for offset, ticket in pairs]
    seen: list[uuid.UUID] = []
    after = None
    resumptions = 0
    while True:
        page = next_page(rows, limit, after=after)
        seen.extend(row["ticket_id"] for row in page.rows)
        if page.next_position is None:
            break
        after = decode_cursor(encode_cursor(page.next_position, key=KEY), key=KEY)
        resumptions += 1
    assert resumptions <= 20
    assert len(seen) == len(set(seen)) == len(pairs)


def test_keyset_page_from_a_limited_query_equals_the_full_set():
    instant = datetime(2026, 1, 1, tzinfo=UTC)
    rows = sorted(
        ({"updated_at": instant + timedelta(seconds=n % 3), "ticket_id": uuid.UUID(int=n)} for n in range(30)),
        key=lambda row: (row["updated_at"], row["ticket_id"]),
    )
    after = ExportPosition(rows[9]["updated_at"], rows[9]["ticket_id"])
    query_result = rows[10:16]  # what LIMIT limit + 1 would return
    assert next_page(query_result, 5, after=after) == next_page(rows, 5, after=after)
