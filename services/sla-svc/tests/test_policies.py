"""The default policy as pure functions: table-driven cases and properties."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sla_svc.timers import policies

STARTED = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("priority", "minutes", "due"),
    [
        ("urgent", 60, datetime(2026, 11, 22, 9, 0, tzinfo=UTC)),
        ("high", 240, datetime(2026, 11, 22, 12, 0, tzinfo=UTC)),
        ("normal", 480, datetime(2026, 11, 22, 16, 0, tzinfo=UTC)),
        ("low", 1440, datetime(2026, 11, 23, 8, 0, tzinfo=UTC)),
        ("made-up", 480, datetime(2026, 11, 22, 16, 0, tzinfo=UTC)),  # unknown → normal
        ("", 480, datetime(2026, 11, 22, 16, 0, tzinfo=UTC)),
    ],
)
def test_first_response_timer(priority, minutes, due):
    timer = policies.first_response_timer(priority=priority, created_at=STARTED)
    assert timer == policies.Timer(metric="first_response", policy="default", target_minutes=minutes,
                                   started_at=STARTED, due_at=due)


def test_calendar_time_ignores_offsets_and_dst():
    # 2026-03-29 01:30 in Berlin is 30 minutes before the spring-forward gap: calendar time, not wall time
    berlin = timezone(timedelta(hours=1))
    start = datetime(2026, 3, 29, 1, 30, tzinfo=berlin)
    assert policies.first_response_timer(priority="urgent", created_at=start).due_at - start == timedelta(hours=1)


def test_naive_start_is_refused():
    with pytest.raises(ValueError):
        policies.due_at(datetime(2026, 1, 1), 60)


def test_table_is_what_the_api_shows():
    assert policies.default_policy_table() == {
        "name": "default", "calendar": "24x7",
        "first_response_minutes": {"urgent": 60, "high": 240, "normal": 480, "low": 1440},
    }


aware_datetimes = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))]),
)
priorities = st.sampled_from(policies.PRIORITY_ORDER)


@given(started=aware_datetimes, a=priorities, b=priorities)
def test_due_after_start_and_monotone_in_priority(started, a, b):
    due_a = policies.first_response_timer(priority=a, created_at=started).due_at
    due_b = policies.first_response_timer(priority=b, created_at=started).due_at
    assert due_a > started and due_b > started
    if policies.PRIORITY_ORDER.index(a) < policies.PRIORITY_ORDER.index(b):  # b is more urgent
        assert due_b < due_a
    elif a == b:
        assert due_a == due_b
