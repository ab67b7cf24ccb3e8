"""What "today" means, and which zone names are accepted: pure functions."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics_svc.kpis.service import day_bounds, zone
from helpdesk_common.problems import Problem


@pytest.mark.parametrize(
    ("now", "tz", "start", "hours"),
    [
        (datetime(2026, 11, 22, 17, 30, tzinfo=UTC), "UTC", datetime(2026, 11, 22, tzinfo=UTC), 24),
        # 01:30 on the 23rd in Shanghai
        (datetime(2026, 11, 22, 17, 30, tzinfo=UTC), "Asia/Shanghai", datetime(2026, 11, 22, 16, tzinfo=UTC), 24),
        # 22:30 on the 21st in New York
        (datetime(2026, 11, 22, 3, 30, tzinfo=UTC), "America/New_York", datetime(2026, 11, 21, 5, tzinfo=UTC), 24),
        # spring forward in Berlin: a 23-hour day; fall back: a 25-hour day
        (datetime(2026, 3, 29, 12, tzinfo=UTC), "Europe/Berlin", datetime(2026, 3, 28, 23, tzinfo=UTC), 23),
        (datetime(2026, 10, 25, 12, tzinfo=UTC), "Europe/Berlin", datetime(2026, 10, 24, 22, tzinfo=UTC), 25),
    ],
)
def test_day_bounds(now, tz, start, hours):
    assert day_bounds(now, zone(tz)) == (start, start + timedelta(hours=hours))


@given(now=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
       tz=st.sampled_from(["UTC", "Asia/Shanghai", "America/Sao_Paulo", "Australia/Lord_Howe", "Pacific/Chatham"]))
def test_now_is_inside_its_day(now, tz):
    start, end = day_bounds(now, zone(tz))
    assert start <= now < end
    assert timedelta(hours=22) <= end - start <= timedelta(hours=26)


@pytest.mark.parametrize("name", ["UTC", "Asia/Shanghai", "Etc/GMT+5", "America/Argentina/Buenos_Aires"])
def test_known_zones(name):
    assert zone(name).utcoffset(datetime(2026, 1, 1)) is not None


@pytest.mark.parametrize(
    "name", ["Mars/Olympus", "utc", "", "America", "../etc/passwd", "/etc/localtime", "localtime", "posixrules",
             "zone.tab", "Asia/Shanghai\x00", "Asia/../Asia/Shanghai"],
)
def test_unknown_zones_are_422_problems(name):
    with pytest.raises(Problem) as caught:
        zone(name)
    assert caught.value.status == 422


def test_utc_needs_no_tz_database():
    assert zone("UTC") is UTC and ZoneInfo("UTC").utcoffset(None) == timedelta(0)
