"""Business-time arithmetic: table-driven cases (no database)."""

from __future__ import annotations

import importlib.util
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sla_svc.calendars import (
    ALWAYS_OPEN,
    NoWorkingTime,
    add_business_minutes,
    add_business_time,
    business_seconds_between,
    business_time_between,
    day_intervals,
    is_working_time,
    library_days,
    next_working_instant,
    wall_intervals,
)


def _load_cases():
    """The shared calendars (pytest runs with --import-mode=importlib: no sys.path for tests)."""
    name = "sla_calendar_test_cases"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("cases.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


C = _load_cases()
SH, NY = C.SHANGHAI, C.NEW_YORK


def sh(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SH)


def ny(y: int, mo: int, d: int, h: int = 0, mi: int = 0, fold: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=NY, fold=fold)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


# 2025-06-09 is a Monday; Shanghai has no DST.
@pytest.mark.parametrize(
    ("start", "minutes", "due"),
    [
        (sh(2025, 6, 9, 10), 60, sh(2025, 6, 9, 11)),
        (sh(2025, 6, 9, 10), 0, sh(2025, 6, 9, 10)),  # inside working time: start itself
        (sh(2025, 6, 9, 8), 0, sh(2025, 6, 9, 9)),  # before opening: the opening
        (sh(2025, 6, 9, 8), 30, sh(2025, 6, 9, 9, 30)),
        (sh(2025, 6, 9, 9), 540, sh(2025, 6, 9, 18)),  # a full day ends at closing, not next opening
        (sh(2025, 6, 9, 9), 541, sh(2025, 6, 10, 9, 1)),
        (sh(2025, 6, 9, 17, 30), 30, sh(2025, 6, 9, 18)),
        (sh(2025, 6, 9, 17, 30), 31, sh(2025, 6, 10, 9, 1)),
        (sh(2025, 6, 9, 18), 0, sh(2025, 6, 10, 9)),  # closing instant is not working time
        (sh(2025, 6, 9, 19), 60, sh(2025, 6, 10, 10)),  # after closing
        (sh(2025, 6, 13, 17), 120, sh(2025, 6, 16, 10)),  # Friday -> Monday
        (sh(2025, 6, 14, 12), 60, sh(2025, 6, 16, 10)),  # on the weekend
        (sh(2025, 6, 15, 23, 59), 1, sh(2025, 6, 16, 9, 1)),
        (sh(2025, 6, 9, 9), 5 * 540, sh(2025, 6, 13, 18)),
        (sh(2025, 6, 9, 9), 5 * 540 + 1, sh(2025, 6, 16, 9, 1)),
        (sh(2025, 10, 31, 17), 120, sh(2025, 11, 3, 10)),  # month end over a weekend
        (sh(2025, 12, 31, 17), 120, sh(2026, 1, 1, 10)),  # year end, no holidays configured
        (sh(2025, 6, 9, 9), 100_000, sh(2026, 2, 23, 10, 40)),  # 185 days of 540 min = 37 weeks, +100
    ],
)
def test_plain_office_hours(start, minutes, due):
    assert add_business_minutes(C.PLAIN, start, minutes) == due


@pytest.mark.parametrize(
    ("start", "minutes", "due"),
    [
        (sh(2025, 6, 9, 11, 30), 60, sh(2025, 6, 9, 13, 30)),  # lunch is skipped
        (sh(2025, 6, 9, 11), 60, sh(2025, 6, 9, 12)),  # ends exactly at lunch
        (sh(2025, 6, 9, 12), 0, sh(2025, 6, 9, 13)),  # lunch start is not working time
        (sh(2025, 6, 9, 12, 30), 0, sh(2025, 6, 9, 13)),
        (sh(2025, 6, 9, 12, 30), 30, sh(2025, 6, 9, 13, 30)),  # starts in lunch
        (sh(2025, 6, 9, 8), 240, sh(2025, 6, 9, 14)),  # before opening, across lunch
        (sh(2025, 6, 9, 17), 120, sh(2025, 6, 10, 10)),
        (sh(2025, 6, 14, 10), 480, sh(2025, 6, 16, 18)),  # weekend start, one full split day
        (sh(2025, 6, 14, 10), 481, sh(2025, 6, 17, 9, 1)),
    ],
)
def test_split_shift(start, minutes, due):
    assert add_business_minutes(C.SPLIT, start, minutes) == due


@pytest.mark.parametrize(
    ("start", "minutes", "due"),
    [
        # Spring Festival 2025: Jan 28 - Feb 4 off, Sun Jan 26 and Sat Feb 8 worked.
        (sh(2025, 1, 24, 17), 120, sh(2025, 1, 26, 10)),  # Friday -> make-up Sunday (Monday hours)
        (sh(2025, 1, 26, 11, 30), 60, sh(2025, 1, 26, 13, 30)),  # make-up day keeps the lunch break
        (sh(2025, 1, 27, 17), 120, sh(2025, 2, 5, 10)),
        (sh(2025, 2, 7, 17), 120, sh(2025, 2, 8, 10)),
        # National Day 2025: Oct 1 - 8 off, Sun Sep 28 and Sat Oct 11 worked.
        (sh(2025, 9, 26, 17), 120, sh(2025, 9, 28, 10)),
        (sh(2025, 9, 30, 17), 120, sh(2025, 10, 9, 10)),
        (sh(2025, 10, 10, 17), 120, sh(2025, 10, 11, 10)),
        # Year end: Jan 1 and 2 2026 off, Sunday Jan 4 worked.
        (sh(2025, 12, 31, 17), 120, sh(2026, 1, 4, 10)),
        # Spring Festival 2026: Feb 15 - 23 off, Sat Feb 14 and Sat Feb 28 worked.
        (sh(2026, 2, 13, 17), 120, sh(2026, 2, 14, 10)),
        (sh(2026, 2, 14, 17), 120, sh(2026, 2, 24, 10)),
        (sh(2026, 2, 27, 17), 120, sh(2026, 2, 28, 10)),
        # National Day 2026: Oct 1 - 7 off, Sun Sep 20 and Sat Oct 10 worked.
        (sh(2026, 9, 18, 17), 120, sh(2026, 9, 20, 10)),
        (sh(2026, 9, 30, 17), 120, sh(2026, 10, 8, 10)),
        (sh(2026, 10, 9, 17), 120, sh(2026, 10, 10, 10)),
    ],
)
def test_china_holidays_and_makeup_days(start, minutes, due):
    assert add_business_minutes(C.CN, start, minutes) == due


def test_china_makeup_days_come_from_the_library():
    assert library_days("CN", None, 2025)[1] == {
        date(2025, 1, 26), date(2025, 2, 8), date(2025, 4, 27), date(2025, 9, 28), date(2025, 10, 11)}
    assert library_days("CN", None, 2026)[1] == {
        date(2026, 1, 4), date(2026, 2, 14), date(2026, 2, 28), date(2026, 5, 9), date(2026, 9, 20),
        date(2026, 10, 10)}


@pytest.mark.parametrize(
    "closed",
    [date(2025, 1, 28) + timedelta(days=i) for i in range(8)]
    + [date(2025, 10, 1) + timedelta(days=i) for i in range(8)]
    + [date(2026, 1, 1), date(2026, 1, 2)]
    + [date(2026, 2, 15) + timedelta(days=i) for i in range(9)]
    + [date(2026, 10, 1) + timedelta(days=i) for i in range(7)],
)
def test_china_days_off(closed):
    assert wall_intervals(C.CN, closed) == ()


def test_china_business_time_over_national_day():
    # Sep 30 (8 h), Oct 9 and 10 (8 h each), make-up Saturday Oct 11 (8 h)
    assert business_time_between(C.CN, sh(2025, 9, 30), sh(2025, 10, 12)) == timedelta(hours=32)


def test_us_new_york_year_end():
    assert add_business_minutes(C.US_NY, ny(2025, 12, 31, 17), 120) == ny(2026, 1, 2, 10)


@pytest.mark.parametrize(
    ("cal", "day", "hours"),
    [
        (C.NY_EARLY, date(2025, 3, 8), 3),
        (C.NY_EARLY, date(2025, 3, 9), 2),  # 01:00 EST -> 04:00 EDT
        (C.NY_EARLY, date(2025, 11, 2), 4),  # 01:00 EDT -> 04:00 EST
        (C.NY_EARLY, date(2026, 3, 8), 2),
        (C.NY_EARLY, date(2026, 11, 1), 4),
        (C.NY_NIGHT, date(2025, 3, 9), 7),
        (C.NY_NIGHT, date(2025, 11, 2), 9),
        (C.NY_NIGHT, date(2026, 3, 8), 7),
        (C.NY_NIGHT, date(2026, 11, 1), 9),
        (C.NY_NIGHT, date(2026, 11, 2), 8),
        (C.NY_GAP, date(2025, 3, 9), 2),  # 02:30 does not exist: opens at the jump, 03:00 EDT
        (C.NY_GAP, date(2025, 3, 10), 2.5),
        (C.NY_24X7, date(2025, 3, 9), 23),
        (C.NY_24X7, date(2025, 11, 2), 25),
    ],
)
def test_dst_day_lengths_follow_the_wall_clock(cal, day, hours):
    midnight = datetime(day.year, day.month, day.day, tzinfo=NY)
    next_midnight = midnight + timedelta(days=1)  # wall-clock arithmetic: the next local midnight
    assert business_time_between(cal, midnight, next_midnight) == timedelta(hours=hours)


@pytest.mark.parametrize(
    ("cal", "start", "minutes", "due"),
    [
        (C.NY_EARLY, ny(2025, 3, 9), 60, utc(2025, 3, 9, 7)),  # 01:00 EST + 1 h = 03:00 EDT
        (C.NY_EARLY, ny(2025, 3, 9), 120, utc(2025, 3, 9, 8)),  # 04:00 EDT: end of the short day
        (C.NY_EARLY, ny(2025, 3, 9), 121, utc(2025, 3, 10, 5, 1)),  # 01:01 EDT next day
        (C.NY_EARLY, ny(2025, 11, 2), 60, utc(2025, 11, 2, 6)),  # the second 01:00 (EST)
        (C.NY_EARLY, ny(2025, 11, 2), 240, utc(2025, 11, 2, 9)),  # 04:00 EST
        (C.NY_EARLY, ny(2025, 11, 2), 241, utc(2025, 11, 3, 6, 1)),
        (C.NY_EARLY, ny(2025, 11, 2, 1, 30, fold=1), 0, utc(2025, 11, 2, 6, 30)),  # fold is honoured
        (C.NY_EARLY, ny(2025, 11, 2, 1, 30, fold=0), 0, utc(2025, 11, 2, 5, 30)),
        (C.NY_EARLY, ny(2026, 3, 8, 3, 30), 30, utc(2026, 3, 8, 8)),  # 03:30 EDT + 30 = 04:00 EDT
        (C.NY_NIGHT, ny(2025, 3, 8, 22), 180, utc(2025, 3, 9, 6)),  # overnight: 2 h Sat + 1 h Sun
        (C.NY_NIGHT, ny(2025, 3, 8, 22), 420, utc(2025, 3, 9, 10)),  # 06:00 EDT: end of the night
        (C.NY_NIGHT, ny(2025, 3, 8, 22), 421, utc(2025, 3, 10, 2, 1)),  # 22:01 EDT Sunday
        (C.NY_NIGHT, ny(2025, 11, 1, 22), 540, utc(2025, 11, 2, 11)),  # 9 real hours to 06:00 EST
        (C.NY_GAP, ny(2025, 3, 9), 0, utc(2025, 3, 9, 7)),  # opens at 03:00 EDT
        (C.NY_24X7, ny(2025, 3, 8, 12), 24 * 60, ny(2025, 3, 9, 13)),  # real time: 24 h later
    ],
)
def test_dst_switch_days(cal, start, minutes, due):
    assert add_business_minutes(cal, start, minutes) == due


def test_dst_is_working_time_in_the_repeated_hour():
    assert is_working_time(C.NY_EARLY, utc(2025, 11, 2, 5, 30))  # 01:30 EDT
    assert is_working_time(C.NY_EARLY, utc(2025, 11, 2, 6, 30))  # 01:30 EST
    assert is_working_time(C.NY_EARLY, utc(2025, 11, 2, 8, 59))
    assert not is_working_time(C.NY_EARLY, utc(2025, 11, 2, 9))
    assert not is_working_time(C.NY_EARLY, utc(2025, 11, 2, 4, 59))


def test_interval_inside_the_skipped_hour_is_empty():
    cal = C.calendar(C.every(C.ALL_DAYS, ("02:00", "03:00")), timezone="America/New_York")
    assert day_intervals(cal, date(2025, 3, 9)) == ()
    assert day_intervals(cal, date(2025, 3, 10)) == ((utc(2025, 3, 10, 6), utc(2025, 3, 10, 7)),)
    assert next_working_instant(cal, ny(2025, 3, 9)) == utc(2025, 3, 10, 6)


def test_midnight_end_joins_the_next_day():
    assert add_business_minutes(C.NY_NIGHT, ny(2025, 6, 2, 23), 120) == ny(2025, 6, 3, 1)
    assert business_time_between(C.NY_NIGHT, ny(2025, 6, 2, 12), ny(2025, 6, 3, 12)) == timedelta(hours=8)


@pytest.mark.parametrize(
    ("start", "minutes"),
    [(utc(2025, 3, 9, 6, 59), 1), (ny(2025, 11, 1, 23), 600), (sh(2025, 12, 31, 23, 59), 2), (utc(2024, 2, 28), 2880)],
)
def test_24x7_is_plain_timedelta(start, minutes):
    # in UTC: aware arithmetic in a named zone would be wall-clock arithmetic across the DST switch
    expected = start.astimezone(UTC) + timedelta(minutes=minutes)
    assert add_business_minutes(ALWAYS_OPEN, start, minutes) == expected
    assert add_business_minutes(C.NY_24X7, start, minutes) == expected


def test_results_are_utc_and_inputs_may_use_any_zone():
    due = add_business_minutes(C.PLAIN, datetime(2025, 6, 9, 11, tzinfo=ZoneInfo("Asia/Tokyo")), 60)
    assert due.tzinfo is UTC
    assert due == sh(2025, 6, 9, 11)


def test_custom_extra_holiday():
    cal = C.calendar(C.every(C.WORKWEEK, ("09:00", "18:00")), extra_holidays=["2025-06-10"])
    assert add_business_minutes(cal, sh(2025, 6, 9, 17), 120) == sh(2025, 6, 11, 10)


def test_custom_extra_working_day_uses_configured_weekday_hours():
    hours = C.every(C.WORKWEEK[:4], ("09:00", "18:00")) | {"fri": [["09:00", "15:00"]]}
    monday_hours = C.calendar(hours, extra_working_days=["2025-06-14"])
    friday_hours = C.calendar(hours, extra_working_days=["2025-06-14"], makeup_day_hours_from="fri")
    assert add_business_minutes(monday_hours, sh(2025, 6, 14, 14), 120) == sh(2025, 6, 14, 16)
    assert add_business_minutes(friday_hours, sh(2025, 6, 14, 14), 120) == sh(2025, 6, 16, 10)


def test_extra_lists_override_the_library():
    hours = C.every(C.WORKWEEK, ("09:00", "18:00"))
    work_national_day = C.calendar(hours, holiday_country="CN", extra_working_days=["2025-10-01"])
    skip_makeup_day = C.calendar(hours, holiday_country="CN", extra_holidays=["2025-09-28"])
    assert add_business_minutes(work_national_day, sh(2025, 9, 30, 17), 120) == sh(2025, 10, 1, 10)
    assert add_business_minutes(skip_makeup_day, sh(2025, 9, 26, 17), 120) == sh(2025, 9, 29, 10)


def test_large_target_is_fast():
    begun = time.perf_counter()
    due = add_business_minutes(C.CN, sh(2025, 1, 2, 9), 100_000)
    assert time.perf_counter() - begun < 1.0
    assert business_time_between(C.CN, sh(2025, 1, 2, 9), due) == timedelta(minutes=100_000)


def test_empty_calendar_raises_quickly():
    begun = time.perf_counter()
    with pytest.raises(NoWorkingTime, match="no working time in the 366 days"):
        add_business_minutes(C.EMPTY, utc(2025, 1, 1), 1)
    with pytest.raises(NoWorkingTime):
        add_business_minutes(C.EMPTY, utc(2025, 1, 1), 0)
    with pytest.raises(NoWorkingTime):
        next_working_instant(C.EMPTY, utc(2025, 1, 1))
    assert time.perf_counter() - begun < 1.0
    assert not is_working_time(C.EMPTY, utc(2025, 1, 1))
    assert business_time_between(C.EMPTY, utc(2025, 1, 1), utc(2027, 1, 1)) == timedelta(0)  # zero, no error


def test_every_working_day_a_holiday_raises():
    mondays = [date(2025, 1, 6) + timedelta(weeks=i) for i in range(78)]  # through 2026-06-29
    cal = C.calendar({"mon": [["09:00", "18:00"]]}, extra_holidays=[d.isoformat() for d in mondays])
    begun = time.perf_counter()
    with pytest.raises(NoWorkingTime):
        add_business_minutes(cal, sh(2025, 7, 1), 60)
    assert time.perf_counter() - begun < 1.0
    assert add_business_minutes(cal, sh(2025, 8, 1), 60) == sh(2026, 7, 6, 10)  # within 366 days


def test_between_is_the_inverse_and_antisymmetric():
    start, end = sh(2025, 6, 9, 10), sh(2025, 6, 16, 10)
    assert business_time_between(C.SPLIT, start, end) == timedelta(hours=40)
    assert business_time_between(C.SPLIT, end, start) == -timedelta(hours=40)
    assert business_seconds_between(C.SPLIT, start, end) == 40 * 3600
    assert business_seconds_between(C.SPLIT, sh(2025, 6, 9, 12), sh(2025, 6, 9, 13)) == 0


def test_next_working_instant_and_is_working_time():
    assert next_working_instant(C.SPLIT, sh(2025, 6, 9, 12, 15)) == sh(2025, 6, 9, 13)
    assert next_working_instant(C.SPLIT, sh(2025, 6, 9, 13, 15)) == sh(2025, 6, 9, 13, 15)
    assert is_working_time(C.SPLIT, sh(2025, 6, 9, 9))
    assert not is_working_time(C.SPLIT, sh(2025, 6, 9, 12))
    assert is_working_time(C.CN, sh(2025, 2, 8, 10))  # make-up Saturday
    assert not is_working_time(C.CN, sh(2025, 10, 8, 10))  # substituted day off


def test_sub_second_precision_is_kept():
    start = sh(2025, 6, 9, 17, 59) + timedelta(seconds=30, microseconds=5)
    due = add_business_time(C.PLAIN, start, timedelta(minutes=1))
    assert due == sh(2025, 6, 10, 9) + timedelta(seconds=30, microseconds=5)
    assert business_time_between(C.PLAIN, start, due) == timedelta(minutes=1)


def test_bad_arguments():
    with pytest.raises(ValueError, match="timezone-aware"):
        add_business_minutes(C.PLAIN, datetime(2025, 6, 9, 10), 60)
    with pytest.raises(ValueError, match="negative"):
        add_business_minutes(C.PLAIN, sh(2025, 6, 9, 10), -1)
    with pytest.raises(ValueError, match="timezone-aware"):
        is_working_time(C.PLAIN, datetime(2025, 6, 9, 10))
