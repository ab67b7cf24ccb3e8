"""The incremental export's cursor and start_time, as pure functions (no database)."""

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpdesk_common.exports import InvalidCursor, encode_cursor, encode_signed, ExportPosition
from ticket_svc.exports import position
from ticket_svc.exports.position import NIL, ChangePosition, ExportCursor

KEY = b"k" * 32
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


@given(xid=st.integers(0, position.MAX_XID), ticket=st.uuids(),
       start=st.none() | st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 1, 1),
                                      timezones=st.just(UTC)))
def test_cursor_round_trip(xid, ticket, start):
    cursor = ExportCursor(ChangePosition(xid, ticket), start)
    assert position.decode(position.encode(cursor, key=KEY), key=KEY) == cursor


def test_tampered_forged_and_foreign_cursors_are_refused():
    token = position.encode(ExportCursor(ChangePosition(1234, uuid.uuid4()), None), key=KEY)
    payload, _, signature = token.partition(".")
    flipped = payload[:-1] + ("A" if payload[-1] != "A" else "B")
    for bad in (f"{flipped}.{signature}", token + "x", token[:-2], "", "garbage", "a.b",
                position.encode(ExportCursor(ChangePosition(1, NIL), None), key=b"another key" * 3)):
        with pytest.raises(InvalidCursor):
            position.decode(bad, key=KEY)
    # signed with the right key but not an export position: another kind of cursor, other fields
    for body in ({"k": "customers", "x": "1", "t": str(NIL), "s": None}, {"k": "tickets", "x": "-1", "t": str(NIL), "s": None},
                 {"k": "tickets", "x": str(2**64), "t": str(NIL), "s": None},
                 {"k": "tickets", "x": "1", "t": "nope", "s": None},
                 {"k": "tickets", "x": "1", "t": str(NIL), "s": "2026-01-01T00:00:00"}, {"x": "1"}):
        with pytest.raises(InvalidCursor):
            position.decode(encode_signed(body, key=KEY), key=KEY)
    # the analytics-style (updated_at, ticket_id) cursor is not an incremental-export cursor
    with pytest.raises(InvalidCursor):
        position.decode(encode_cursor(ExportPosition(NOW, uuid.uuid4()), key=KEY), key=KEY)


@pytest.mark.parametrize(("value", "expected"), [
    (0, datetime(1970, 1, 1, tzinfo=UTC)),
    (1764576000, datetime(2025, 12, 1, 8, 0, tzinfo=UTC)),
    (datetime(2026, 12, 1, 8, 0, tzinfo=timezone(timedelta(hours=8))), datetime(2026, 12, 1, 0, 0, tzinfo=UTC)),
    (NOW + timedelta(days=1), NOW + timedelta(days=1)),  # the future: changes from then on
])
def test_start_time_takes_unix_seconds_and_times_with_offset(value, expected):
    assert position.start_instant(value) == expected


@pytest.mark.parametrize("value", [-1, position.MAX_EPOCH + 1, datetime(2026, 12, 1, 8, 0)])
def test_start_times_out_of_range_or_without_offset_are_refused(value):
    with pytest.raises(ValueError):
        position.start_instant(value)


def test_a_full_page_continues_after_its_last_row():
    last = ChangePosition(500, uuid.uuid4())
    assert position.next_cursor(after=ChangePosition(10, NIL), last_row=last, more=True, horizon=900) == (last, False)


def test_a_short_page_jumps_to_the_horizon_and_never_back():
    after = ChangePosition(10, uuid.uuid4())
    assert position.next_cursor(after=after, last_row=ChangePosition(20, uuid.uuid4()), more=False,
                                horizon=30) == (ChangePosition(30, NIL), True)
    assert position.next_cursor(after=after, last_row=None, more=False, horizon=30) == (ChangePosition(30, NIL), True)
    # a horizon behind the position (a restored database) does not move the export backwards
    assert position.next_cursor(after=after, last_row=None, more=False, horizon=5) == (after, True)


def test_start_time_is_kept_in_utc_by_the_cursor():
    start = NOW - timedelta(days=3)
    token = position.encode(ExportCursor(ChangePosition(7, NIL), start.astimezone()), key=KEY)
    assert position.decode(token, key=KEY).start_time == start
