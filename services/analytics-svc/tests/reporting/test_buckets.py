"""Time buckets: local calendars, DST days of 23 and 25 hours, ranges, comparisons, 422-ready errors."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics_svc.reporting.buckets import (
    INTERVALS,
    MAX_RANGE,
    ReportParameterError,
    bucket_of,
    buckets_between,
    parse_interval,
    previous_period,
    resolve_zone,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
ZONES = [SHANGHAI, NEW_YORK, BERLIN, ZoneInfo("UTC"), ZoneInfo("Asia/Kolkata"), ZoneInfo("Australia/Lord_Howe")]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("instant", "interval", "zone", "start", "end", "label"),
    [
        # 23:30 UTC is already the next morning in Shanghai.
        (utc(2026, 3, 9, 23, 30), "day", SHANGHAI, utc(2026, 3, 9, 16), utc(2026, 3, 10, 16), "2026-03-10T00:00:00+08:00"),
        (utc(2026, 3, 9, 23, 30), "hour", SHANGHAI, utc(2026, 3, 9, 23), utc(2026, 3, 10, 0), "2026-03-10T07:00:00+08:00"),
        # 2026-03-11 is a Wednesday: its ISO week started on Monday the 9th.
        (utc(2026, 3, 11, 12), "week", SHANGHAI, utc(2026, 3, 8, 16), utc(2026, 3, 15, 16), "2026-03-09T00:00:00+08:00"),
        (utc(2026, 3, 31, 17), "month", SHANGHAI, utc(2026, 3, 31, 16), utc(2026, 4, 30, 16), "2026-04-01T00:00:00+08:00"),
        # New York spring forward (2026-03-08): a 23-hour day.
        (utc(2026, 3, 8, 12), "day", NEW_YORK, utc(2026, 3, 8, 5), utc(2026, 3, 9, 4), "2026-03-08T00:00:00-05:00"),
        # New York fall back (2026-11-01): a 25-hour day.
        (utc(2026, 11, 1, 12), "day", NEW_YORK, utc(2026, 11, 1, 4), utc(2026, 11, 2, 5), "2026-11-01T00:00:00-04:00"),
        # Berlin: 2026-03-29 has 23 hours, 2026-10-25 has 25.
        (utc(2026, 3, 29, 10), "day", BERLIN, utc(2026, 3, 28, 23), utc(2026, 3, 29, 22), "2026-03-29T00:00:00+01:00"),
        (utc(2026, 10, 25, 10), "day", BERLIN, utc(2026, 10, 24, 22), utc(2026, 10, 25, 23), "2026-10-25T00:00:00+02:00"),
        # A week holding a transition is 167 hours; a month holding one is a day's worth minus an hour.
        (utc(2026, 3, 25), "week", BERLIN, utc(2026, 3, 22, 23), utc(2026, 3, 29, 22), "2026-03-23T00:00:00+01:00"),
        (utc(2026, 10, 5), "month", BERLIN, utc(2026, 9, 30, 22), utc(2026, 10, 31, 23), "2026-10-01T00:00:00+02:00"),
        # December rolls into next year's January.
        (utc(2026, 12, 31, 12), "month", NEW_YORK, utc(2026, 12, 1, 5), utc(2027, 1, 1, 5), "2026-12-01T00:00:00-05:00"),
        # ISO week across a year end: 2027-01-01 is a Friday, its week began Monday 2026-12-28.
        (utc(2027, 1, 1, 12), "week", ZoneInfo("UTC"), utc(2026, 12, 28), utc(2027, 1, 4), "2026-12-28T00:00:00+00:00"),
    ],
)
def test_bucket_table(instant, interval, zone, start, end, label):
    bucket = bucket_of(instant, interval, zone)
    assert (bucket.start, bucket.end, bucket.label) == (start, end, label)


def test_repeated_hour_is_two_buckets_and_skipped_hour_none():
    fall_back = buckets_between(utc(2026, 11, 1, 4), utc(2026, 11, 2, 5), "hour", NEW_YORK)
    assert len(fall_back) == 25
    labels = [bucket.label for bucket in fall_back]
    assert "2026-11-01T01:00:00-04:00" in labels and "2026-11-01T01:00:00-05:00" in labels
    spring = buckets_between(utc(2026, 3, 8, 5), utc(2026, 3, 9, 4), "hour", NEW_YORK)
    assert len(spring) == 23
    assert not any(bucket.local_start.hour == 2 for bucket in spring)


def test_half_hour_dst_shift_cuts_the_hour_at_the_change():
    # Lord Howe Island moves its clocks by 30 minutes: back at 02:00 (+11 -> +10:30) on 2026-04-05,
    # forward at 02:00 (+10:30 -> +11) on 2026-10-04.
    lord_howe = ZoneInfo("Australia/Lord_Howe")
    back = buckets_between(utc(2026, 4, 4, 13), utc(2026, 4, 4, 17, 30), "hour", lord_howe)
    assert [(bucket.label, bucket.end - bucket.start) for bucket in back] == [
        ("2026-04-05T00:00:00+11:00", timedelta(hours=1)),
        ("2026-04-05T01:00:00+11:00", timedelta(hours=1)),
        ("2026-04-05T01:30:00+10:30", timedelta(minutes=30)),
        ("2026-04-05T02:00:00+10:30", timedelta(hours=1)),
        ("2026-04-05T03:00:00+10:30", timedelta(hours=1)),
    ]
    forward = buckets_between(utc(2026, 10, 3, 14, 30), utc(2026, 10, 3, 17), "hour", lord_howe)
    assert [(bucket.label, bucket.end - bucket.start) for bucket in forward] == [
        ("2026-10-04T01:00:00+10:30", timedelta(hours=1)),
        ("2026-10-04T02:30:00+11:00", timedelta(minutes=30)),
        ("2026-10-04T03:00:00+11:00", timedelta(hours=1)),
    ]
    assert len(buckets_between(utc(2026, 4, 4, 13), utc(2026, 4, 5, 13, 30), "day", lord_howe)) == 1


def test_midnight_skipped_by_dst_starts_the_day_at_the_jump():
    # America/Santiago springs forward at local midnight: 2026-09-06 begins at 01:00 (-03).
    santiago = ZoneInfo("America/Santiago")
    bucket = bucket_of(utc(2026, 9, 6, 12), "day", santiago)
    assert bucket.label == "2026-09-06T01:00:00-03:00"
    assert bucket.end - bucket.start == timedelta(hours=23)


def test_one_day_range_on_dst_days_is_one_bucket():
    for start, end in [(utc(2026, 3, 8, 5), utc(2026, 3, 9, 4)), (utc(2026, 11, 1, 4), utc(2026, 11, 2, 5))]:
        assert len(buckets_between(start, end, "day", NEW_YORK)) == 1


def test_range_buckets_stick_out_but_cover():
    buckets = buckets_between(utc(2026, 1, 1, 12), utc(2026, 1, 3, 12), "day", ZoneInfo("UTC"))
    assert [bucket.label[:10] for bucket in buckets] == ["2026-01-01", "2026-01-02", "2026-01-03"]
    assert buckets_between(utc(2026, 1, 1), utc(2026, 1, 1), "day", SHANGHAI) == []


def test_month_buckets_over_a_year():
    buckets = buckets_between(utc(2025, 12, 31, 16), utc(2026, 12, 31, 16), "month", SHANGHAI)
    assert [bucket.local_start.month for bucket in buckets] == list(range(1, 13))


instants = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2060, 1, 1), timezones=st.just(UTC))


@settings(max_examples=300, deadline=None)
@given(instant=instants, interval=st.sampled_from(INTERVALS), zone=st.sampled_from(ZONES))
def test_bucket_holds_instant_and_is_stable(instant, interval, zone):
    bucket = bucket_of(instant, interval, zone)
    assert bucket.start <= instant < bucket.end
    assert bucket_of(bucket.start, interval, zone) == bucket
    assert bucket_of(bucket.end - timedelta(microseconds=1), interval, zone) == bucket
    assert bucket.local_start == bucket.start.astimezone(zone)
    if interval != "hour":
        assert bucket.local_start.hour in (0, 1) and bucket.local_start.minute in (0, 30)
    if interval == "week":
        assert bucket.local_start.weekday() == 0
    if interval == "month":
        assert bucket.local_start.day == 1


@settings(max_examples=300, deadline=None)
@given(
    start=instants,
    hours=st.integers(min_value=0, max_value=24 * 30),
    interval=st.sampled_from(INTERVALS),
    zone=st.sampled_from(ZONES),
)
def test_buckets_tile_the_range(start, hours, interval, zone):
    end = start + timedelta(hours=hours)
    buckets = buckets_between(start, end, interval, zone)
    if hours == 0:
        assert buckets == []
        return
    assert buckets[0].start <= start < buckets[0].end
    assert buckets[-1].start < end <= buckets[-1].end
    for before, after in zip(buckets, buckets[1:]):
        assert before.end == after.start


@settings(max_examples=150, deadline=None)
@given(
    start=instants,
    count=st.integers(min_value=1, max_value=14),
    interval=st.sampled_from(INTERVALS),
    zone=st.sampled_from(ZONES),
)
def test_previous_period_of_whole_buckets_is_as_many_buckets_just_before(start, count, interval, zone):
    first = bucket_of(start, interval, zone)
    end = first.start
    buckets = [first]
    for _ in range(count - 1):
        buckets.append(bucket_of(buckets[-1].end, interval, zone))
    begin, end = buckets[0].start, buckets[-1].end
    previous_start, previous_end = previous_period(begin, end, interval, zone)
    assert previous_end == begin
    assert len(buckets_between(previous_start, previous_end, interval, zone)) == count
    assert bucket_of(previous_start, interval, zone).start == previous_start


def test_previous_period_calendar_and_plain():
    # March in Berlin (743 hours) compares with February (672 hours).
    march = (utc(2026, 2, 28, 23), utc(2026, 3, 31, 22))
    assert previous_period(*march, "month", BERLIN) == (utc(2026, 1, 31, 23), utc(2026, 2, 28, 23))
    # The 25-hour fall-back day compares with the 24-hour day before it.
    assert previous_period(utc(2026, 11, 1, 4), utc(2026, 11, 2, 5), "day", NEW_YORK) == (
        utc(2026, 10, 31, 4),
        utc(2026, 11, 1, 4),
    )
    # A range not on bucket boundaries steps back by its own duration.
    assert previous_period(utc(2026, 1, 10, 12), utc(2026, 1, 12, 18), "day", SHANGHAI) == (
        utc(2026, 1, 8, 6),
        utc(2026, 1, 10, 12),
    )


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "../etc/passwd", "Asia/Shanghai\x00", "asia shanghai"])
def test_unknown_zone_names_the_parameter(name):
    with pytest.raises(ReportParameterError) as caught:
        resolve_zone(name)
    assert caught.value.parameter == "tz"


def test_known_zone():
    assert resolve_zone("Asia/Shanghai") == SHANGHAI


def test_range_errors_name_the_parameter():
    with pytest.raises(ReportParameterError) as caught:
        buckets_between(utc(2026, 2, 1), utc(2026, 1, 1), "day", SHANGHAI)
    assert caught.value.parameter == "from"
    with pytest.raises(ReportParameterError) as caught:
        buckets_between(datetime(2026, 1, 1), utc(2026, 1, 2), "day", SHANGHAI)
    assert caught.value.parameter == "from"
    with pytest.raises(ReportParameterError) as caught:
        previous_period(utc(2026, 1, 1), datetime(2026, 1, 2), "day", SHANGHAI)
    assert caught.value.parameter == "to"
    with pytest.raises(ReportParameterError) as caught:
        parse_interval("quarter")
    assert caught.value.parameter == "interval"
    with pytest.raises(ReportParameterError) as caught:
        buckets_between(utc(2026, 1, 1), utc(2026, 1, 1), "fortnight", SHANGHAI)
    assert caught.value.parameter == "interval"


@pytest.mark.parametrize("interval", INTERVALS)
def test_range_limits(interval):
    start = utc(2026, 1, 1)
    buckets_between(start, start + MAX_RANGE[interval], interval, SHANGHAI)  # at the limit: fine
    with pytest.raises(ReportParameterError) as caught:
        buckets_between(start, start + MAX_RANGE[interval] + timedelta(seconds=1), interval, SHANGHAI)
    assert caught.value.parameter == "to" and interval in caught.value.message
