"""Hypothesis properties of business-time arithmetic over calendars with lunch breaks, holidays,
make-up days, overnight shifts and DST switches."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from sla_svc.calendars import (
    ALWAYS_OPEN,
    add_business_minutes,
    add_business_time,
    business_time_between,
    is_working_time,
    next_working_instant,
    wall_intervals,
)


def _load_cases():
    name = "sla_calendar_test_cases"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("cases.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


C = _load_cases()
CALENDARS = [C.PLAIN, C.SPLIT, C.CN, C.US_NY, C.NY_EARLY, C.NY_NIGHT, C.NY_GAP, C.NY_24X7, ALWAYS_OPEN]
MINUTE = timedelta(minutes=1)
FEW = settings(max_examples=150, deadline=None)

calendars = st.sampled_from(CALENDARS)
# 2024-12 .. 2026-12: both China schedules, four New York DST switches, two year ends
instants = st.datetimes(min_value=datetime(2024, 12, 1), max_value=datetime(2026, 12, 31),
                        timezones=st.just(UTC))
minute_instants = instants.map(lambda t: t.replace(second=0, microsecond=0))
minutes = st.integers(min_value=0, max_value=20_000)
positive = st.integers(min_value=1, max_value=10_000)


def wall_is_working(cal, instant: datetime) -> bool:
    """Oracle independent of the UTC mapping: read the local wall clock, look up that day's hours."""
    local = instant.astimezone(cal.timezone)
    minute = local.hour * 60 + local.minute
    return any(start <= minute < end for start, end in wall_intervals(cal, local.date()))


def reference_add(cal, start: datetime, count: int) -> datetime:
    """Minute-by-minute reference for minute-aligned starts: the end of the ``count``-th working minute."""
    moment = start
    while count:
        if wall_is_working(cal, moment):
            count -= 1
        moment += MINUTE
    return moment


@FEW
@given(calendars, minute_instants, st.integers(min_value=1, max_value=300))
def test_agrees_with_minute_by_minute_reference(cal, start, count):
    assert add_business_minutes(cal, start, count) == reference_add(cal, start, count)


@FEW
@given(calendars, minute_instants, positive)
def test_the_minute_before_the_result_is_working_time(cal, start, count):
    due = add_business_minutes(cal, start, count)
    assert business_time_between(cal, due - MINUTE, due) == MINUTE
    assert is_working_time(cal, due - MINUTE)


@FEW
@given(calendars, instants, positive)
def test_the_instant_before_the_result_is_working_time(cal, start, count):
    due = add_business_minutes(cal, start, count)
    assert is_working_time(cal, due - timedelta(microseconds=1))
    assert due > start


@FEW
@given(calendars, instants)
def test_zero_minutes_is_the_next_working_instant(cal, start):
    due = add_business_minutes(cal, start, 0)
    assert due == next_working_instant(cal, start)
    assert is_working_time(cal, due)
    assert business_time_between(cal, start, due) == timedelta(0)
    assert (due == start) == is_working_time(cal, start)


@FEW
@given(calendars, instants, minutes, minutes)
def test_monotonic_in_minutes(cal, start, a, b):
    a, b = sorted((a, b))
    assert add_business_minutes(cal, start, a) <= add_business_minutes(cal, start, b)


@FEW
@given(calendars, instants, instants, minutes)
def test_monotonic_in_start(cal, s1, s2, count):
    s1, s2 = sorted((s1, s2))
    assert add_business_minutes(cal, s1, count) <= add_business_minutes(cal, s2, count)


@FEW
@given(calendars, instants, positive, positive)
def test_additive(cal, start, a, b):
    assert add_business_minutes(cal, add_business_minutes(cal, start, a), b) == add_business_minutes(cal, start, a + b)


@FEW
@given(calendars, instants, minutes)
def test_between_inverts_add(cal, start, count):
    assert business_time_between(cal, start, add_business_minutes(cal, start, count)) == timedelta(minutes=count)


@FEW
@given(calendars, instants, st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30)))
def test_between_inverts_add_for_any_duration(cal, start, amount):
    assert business_time_between(cal, start, add_business_time(cal, start, amount)) == amount


@FEW
@given(calendars, instants, instants, instants)
def test_between_adds_up_over_consecutive_ranges_and_is_antisymmetric(cal, a, b, c):
    a, b, c = sorted((a, b, c))
    ab, bc, ac = (business_time_between(cal, x, y) for x, y in ((a, b), (b, c), (a, c)))
    assert ab + bc == ac
    assert timedelta(0) <= ac <= c - a
    assert business_time_between(cal, c, a) == -ac


@FEW
@given(st.sampled_from([ALWAYS_OPEN, C.NY_24X7]), instants, minutes)
def test_24x7_is_plain_timedelta(cal, start, count):
    assert add_business_minutes(cal, start, count) == start + timedelta(minutes=count)


@FEW
@given(calendars, minute_instants)
def test_is_working_time_matches_the_wall_clock(cal, instant):
    assert is_working_time(cal, instant) == wall_is_working(cal, instant)


ODD_ZONES = ["America/Santiago", "America/Havana", "Australia/Lord_Howe", "Europe/Dublin", "Asia/Beirut",
             "Pacific/Apia", "America/New_York", "Asia/Kolkata"]  # midnight switches, 30-min DST, negative DST


@st.composite
def random_calendars(draw):
    """Arbitrary weekly hours on a half-hour grid in zones with awkward transitions."""
    hours = {}
    for day in C.ALL_DAYS:
        points = sorted(draw(st.sets(st.integers(0, 48), max_size=6)))
        points = points[: len(points) // 2 * 2]
        hours[day] = [(f"{a // 2:02d}:{a % 2 * 30:02d}", f"{b // 2:02d}:{b % 2 * 30:02d}")
                      for a, b in zip(points[::2], points[1::2])]
    if not any(hours.values()):
        hours["wed"] = [("10:00", "10:30")]
    return C.calendar(hours, timezone=draw(st.sampled_from(ODD_ZONES)), name="random")


wide_instants = st.datetimes(min_value=datetime(2010, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC))


@settings(max_examples=100, deadline=None)
@given(random_calendars(), wide_instants, wide_instants, minutes, positive)
def test_laws_hold_for_arbitrary_calendars_and_zones(cal, s1, s2, a, b):
    s1, s2 = sorted((s1, s2))
    due = add_business_minutes(cal, s1, a)
    assert business_time_between(cal, s1, due) == timedelta(minutes=a)
    assert is_working_time(cal, due - timedelta(microseconds=1) if a else due)
    assert add_business_minutes(cal, due, b) == add_business_minutes(cal, s1, a + b)
    assert add_business_minutes(cal, s2, a) >= due
