"""Validation of the calendar API shapes: what is accepted, normalised and refused (and how it says so)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from sla_svc.calendars import ALWAYS_OPEN, CALENDAR_24X7, BusinessCalendar, CalendarIn, DueIn, DueOut

BASE = {"name": "Shanghai office", "timezone": "Asia/Shanghai",
        "weekly_hours": {"mon": [["09:00", "12:00"], ["13:00", "18:00"]]}}


def body(**changes) -> dict:
    return {**BASE, **changes}


def test_full_example_is_accepted_and_normalised():
    cal = CalendarIn.model_validate(body(
        weekly_hours={"tue": [["13:00", "18:00"], ["09:00", "12:00"]], "sat": [["22:00", "24:00"]], "sun": []},
        holiday_country="CN",
        extra_holidays=["2025-12-24", "2025-12-24"],
        extra_working_days=["2025-12-27"],
        makeup_day_hours_from="tue",
    ))
    assert cal.weekly_hours == {"tue": [("09:00", "12:00"), ("13:00", "18:00")], "sat": [("22:00", "24:00")],
                                "sun": []}
    assert cal.extra_holidays == [date(2025, 12, 24)]
    built = BusinessCalendar.from_schema(cal)
    assert built.weekly_hours[1] == ((540, 720), (780, 1080))
    assert built.weekly_hours[5] == ((1320, 1440),)
    assert built.makeup_weekday == 1


@pytest.mark.parametrize(
    ("country", "subdivision"), [("CN", None), ("US", "NY"), ("DE", "BY"), ("US", None)])
def test_known_holiday_regions(country, subdivision):
    CalendarIn.model_validate(body(holiday_country=country, holiday_subdivision=subdivision))


def test_touching_intervals_are_not_overlapping():
    CalendarIn.model_validate(body(weekly_hours={"mon": [["09:00", "12:00"], ["12:00", "18:00"]]}))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "unknown time zone 'Mars/Olympus_Mons'"),
        ({"timezone": "posixrules"}, "unknown time zone"),
        ({"timezone": "../etc/passwd"}, "unknown time zone"),
        ({"weekly_hours": {"mon": [["9:00", "12:00"]]}}, "weekly_hours.mon[0]: '9:00' is not a wall-clock time"),
        ({"weekly_hours": {"mon": [["09:00", "24:01"]]}}, "'24:01' is not a wall-clock time"),
        ({"weekly_hours": {"mon": [["09:00", "25:00"]]}}, "'25:00' is not"),
        ({"weekly_hours": {"mon": [["09:00", "12:60"]]}}, "'12:60' is not"),
        ({"weekly_hours": {"mon": [["24:00", "24:00"]]}}, "start 24:00 must be before end 24:00"),
        ({"weekly_hours": {"fri": [["18:00", "09:00"]]}}, "weekly_hours.fri[0]: start 18:00 must be before end 09:00"),
        ({"weekly_hours": {"mon": [["09:00", "09:00"]]}}, "must be before"),
        ({"weekly_hours": {"wed": [["13:00", "18:00"], ["09:00", "13:30"]]}},
         "weekly_hours.wed: intervals 09:00-13:30 and 13:00-18:00 overlap"),
        ({"weekly_hours": {"mon": [["09:00", "18:00"], ["10:00", "11:00"]]}}, "overlap"),
        ({"weekly_hours": {"monday": [["09:00", "18:00"]]}}, "Input should be 'mon'"),
        ({"weekly_hours": {"mon": [["09:00"]]}}, "weekly_hours.mon.0"),
        ({"weekly_hours": {"mon": [["09:00", "10:00"]] * 25}}, "at most 24 intervals"),
        ({"holiday_country": "XX"}, "holiday_country 'XX' is not supported"),
        ({"holiday_country": "US-NY"}, "put a region in holiday_subdivision"),
        ({"holiday_country": "US", "holiday_subdivision": "ZZ"}, "holiday_subdivision 'ZZ' is not known for US"),
        ({"holiday_subdivision": "NY"}, "holiday_subdivision needs holiday_country"),
        ({"extra_holidays": ["2025-10-01", "2025-10-02"], "extra_working_days": ["2025-10-02"]},
         "dates both in extra_holidays and extra_working_days: 2025-10-02"),
        ({"extra_working_days": ["2025-06-14"], "makeup_day_hours_from": "sun"},
         "extra working day 2025-06-14 has no hours"),
        ({"extra_working_days": ["not-a-date"]}, "extra_working_days.0"),
        ({"makeup_day_hours_from": "holiday"}, "makeup_day_hours_from"),
        ({"color": "blue"}, "Extra inputs are not permitted"),
        ({"name": "  "}, "name"),
        ({"name": "a\x00b"}, "NUL characters are not allowed"),
    ],
)
def test_refused_with_a_clear_message(changes, message):
    with pytest.raises(ValidationError) as caught:
        CalendarIn.model_validate(body(**changes))
    assert message in str(caught.value)


def test_24x7_constant():
    assert CALENDAR_24X7.timezone == "UTC"
    assert all(hours == [("00:00", "24:00")] for hours in CALENDAR_24X7.weekly_hours.values())
    assert len(CALENDAR_24X7.weekly_hours) == 7
    assert ALWAYS_OPEN.weekly_hours == ((((0, 1440),),) * 7)


def test_due_request_shape():
    due = DueIn.model_validate({"start": "2025-06-09T10:00:00+08:00", "minutes": 120})
    assert due.start == datetime(2025, 6, 9, 2, tzinfo=UTC)
    assert DueOut(due_at=datetime(2025, 6, 9, 4, tzinfo=UTC)).model_dump_json() == '{"due_at":"2025-06-09T04:00:00Z"}'


@pytest.mark.parametrize(
    "payload",
    [
        {"start": "2025-06-09T10:00:00", "minutes": 1},  # naive: which zone?
        {"start": "2025-06-09T10:00:00Z", "minutes": -1},
        {"start": "2025-06-09T10:00:00Z", "minutes": True},
        {"start": "2025-06-09T10:00:00Z", "minutes": "60"},
        {"start": "2025-06-09T10:00:00Z", "minutes": 10_000_001},
        {"start": "2025-06-09T10:00:00Z"},
    ],
)
def test_due_request_refusals(payload):
    with pytest.raises(ValidationError):
        DueIn.model_validate(payload)
